"""``create_app(settings)``: the executor's HTTP app and lifespan (consumer and poller around the backend)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from seqferry_executor import api
from seqferry_executor.backends.base import TransferBackend
from seqferry_executor.backends.factory import build_backend
from seqferry_executor.handlers import build_router
from seqferry_executor.service import Orchestrator
from seqferry_executor.settings import ExecutorSettings
from seqferry_executor.store import StateStore
from seqferry_shared.http import create_http_app
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry


def create_app(settings: ExecutorSettings, *, telemetry: Telemetry | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings, "executor", telemetry=telemetry)
    owner = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend: TransferBackend | None = None
        try:
            async with runtime:
                backend = await build_backend(settings, runtime.clients)
                store = StateStore(
                    await runtime.client("dynamodb"),
                    runtime.names.table,
                    record_ttl=timedelta(days=settings.record_ttl_days),
                )
                orchestrator = Orchestrator(
                    backend=backend,
                    store=store,
                    publisher=runtime.publisher,
                    roots=settings.roots,
                    default_task=settings.default_task,
                    known_tasks=set(settings.datasync_task_arns) if settings.backend == "datasync" else None,
                    owner=owner,
                    start_lease=timedelta(seconds=settings.start_lease_s),
                    retry_base_s=settings.retry_base_s,
                    retry_max_s=settings.retry_max_s,
                    meter=runtime.telemetry.meter,
                )
                ping = getattr(backend, "ping", None)
                if ping is not None:
                    runtime.add_check(f"backend:{backend.name}", ping)
                await runtime.add_consumer(runtime.names.executor_queue.name, build_router(orchestrator.intake))
                # The poller's round also starts as soon as the backend says an execution ended (a local pass).
                runtime.add_periodic(
                    "poller", orchestrator.driver.poll_once, every=settings.poll_interval, wake=backend.changed
                )
                runtime.start()
                app.state.driver = orchestrator.driver
                app.state.store = store
                yield
                app.state.driver = None
                # Consumers and the poller stop before the backend closes.
                await runtime.stop()
        finally:
            if backend is not None:
                await backend.close()

    app = create_http_app(
        title="seqferry executor",
        description="Runs transfers (DataSync or the local engine) for windows and requests; reports their states.",
        settings=settings,
        runtime=runtime,
        lifespan=lifespan,
    )

    app.include_router(api.router)
    return app
