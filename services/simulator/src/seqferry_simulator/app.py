"""``create_app(settings)``: the simulator's HTTP app and lifespan (its schedule or parity copies run as rounds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from seqferry_shared.http import create_http_app
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry
from seqferry_simulator import api
from seqferry_simulator.domain.errors import CapacityError, SpecError
from seqferry_simulator.events import RunEvents
from seqferry_simulator.parity import ParityCopier
from seqferry_simulator.service import ManagerConfig, RunManager
from seqferry_simulator.settings import SimulatorSettings
from seqferry_simulator.store import Ledger
from seqferry_simulator.writer import check_writable


def create_app(
    settings: SimulatorSettings,
    *,
    telemetry: Telemetry | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    runtime = ServiceRuntime(settings, "simulator", telemetry=telemetry)
    config = ManagerConfig(
        nas_root=settings.nas_root,
        sequencers=settings.tagged_sequencers,
        seed=settings.seed,
        pace=settings.pace,
        scale=settings.scale,
        chunks=settings.chunks_per_file,
        max_parallel_runs=settings.max_parallel_runs,
        zone=settings.zone,
        run_cycles=settings.run_cycles,
        disk_budget_bytes=settings.disk_budget_bytes,
        stopped_run_share=settings.stopped_run_share,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.nas_root.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(settings.state_dir / "runs.jsonl")
        await asyncio.to_thread(ledger.load)
        async with runtime:
            events = RunEvents(runtime.publisher)
            manager = RunManager(config, ledger, on_started=events.started, on_completed=events.completed, now=now)
            app.state.manager = manager
            runtime.add_check("nas", lambda: asyncio.to_thread(check_writable, settings.nas_root))
            if settings.mode == "parity":
                assert settings.parity_bucket is not None
                s3 = await runtime.client("s3")
                bucket = settings.parity_bucket
                copier = ParityCopier(
                    s3,
                    bucket=bucket,
                    prefix=settings.parity_prefix,
                    nas_root=settings.nas_root,
                    sequencers=settings.tagged_sequencers,
                    zone=settings.zone,
                    manager=manager,
                    now=now,
                )
                app.state.parity = copier
                runtime.add_check("sample bucket", lambda: s3.head_bucket(Bucket=bucket))
                runtime.add_periodic("parity", copier.tick, every=settings.parity_interval_s)
            elif settings.start_interval_s > 0:
                runtime.add_periodic("schedule", manager.scheduled_round, every=settings.start_interval_s)
            runtime.start()
            try:
                yield
            finally:
                await manager.stop()
                app.state.manager = None

    app = create_http_app(
        title="seqferry simulator",
        description="Writes realistic Illumina run folders over time and reports them on the bus.",
        settings=settings,
        runtime=runtime,
        lifespan=lifespan,
    )
    app.add_exception_handler(SpecError, api.bad_request)
    app.add_exception_handler(CapacityError, api.busy)
    app.include_router(api.router)
    return app
