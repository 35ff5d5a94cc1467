"""``create_app(settings)``: the scheduler's HTTP app and lifespan (ticks as periodic rounds; routes in api.py)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from seqferry_scheduler import api
from seqferry_scheduler.service import Clock, Scheduler, utc_now
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_scheduler.ticks import TickClaims
from seqferry_shared.http import create_http_app
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry


def create_app(settings: SchedulerSettings, *, clock: Clock = utc_now, telemetry: Telemetry | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings, "scheduler", telemetry=telemetry)
    replica = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            claims = TickClaims(
                await runtime.client("dynamodb"),
                runtime.names.table,
                owner=replica,
                ttl=timedelta(days=settings.tick_record_ttl_days),
            )
            scheduler = Scheduler(
                settings, claims=claims, publisher=runtime.publisher, clock=clock, meter=runtime.telemetry.meter
            )
            app.state.scheduler = scheduler
            runtime.add_periodic("ticker", scheduler.tick_if_due, every=scheduler.until_next_tick)
            runtime.start()
            yield
            app.state.scheduler = None

    app = create_http_app(
        title="seqferry scheduler",
        description="Opens a transfer window per task on every tick, once across all replicas.",
        settings=settings,
        runtime=runtime,
        lifespan=lifespan,
    )
    app.state.replica = replica
    app.include_router(api.router)
    return app
