"""HTTP app and lifespan: SQS consumer + polling loop around the configured backend; read-only HTTP views."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, status
from pydantic import BaseModel, Field

from seqferry_executor.backends.base import TransferBackend
from seqferry_executor.backends.factory import build_backend
from seqferry_executor.domain.executions import ExecutionRecord
from seqferry_executor.domain.queue import TaskQueue
from seqferry_executor.handlers import build_router
from seqferry_executor.orchestrator import Orchestrator
from seqferry_executor.settings import ExecutorSettings
from seqferry_executor.store import StateStore
from seqferry_shared.http import create_http_app, from_state
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry


class PendingItem(BaseModel):
    seq: int
    kind: str
    ref: str
    windows_folded: int = Field(description="Later windows coalesced into this one.")
    includes: int = Field(description="Number of include patterns.")
    arrived_at: datetime


class TaskView(BaseModel):
    task: str
    version: int
    active_execution: str | None
    active_part: str | None = Field(description="'<part>/<parts>' of the running work item.")
    starting: bool = Field(description="A part is being started (or its start is being retried).")
    start_error: str | None = Field(description="Last start error while retrying with backoff.")
    pending: list[PendingItem]


_orchestrator = from_state("orchestrator", Orchestrator, "executor")


_store = from_state("store", StateStore, "executor")


OrchestratorDep = Annotated[Orchestrator, Depends(_orchestrator)]
StoreDep = Annotated[StateStore, Depends(_store)]


def _task_view(queue: TaskQueue, orchestrator: Orchestrator) -> TaskView:
    active = queue.active
    return TaskView(
        task=queue.task,
        version=queue.version,
        active_execution=active.execution_id if active else None,
        active_part=f"{active.part + 1}/{active.parts}" if active else None,
        starting=bool(active and active.starting),
        start_error=orchestrator.backoff_of(queue.task),
        pending=[
            PendingItem(
                seq=i.seq,
                kind=i.kind.value,
                ref=i.ref,
                windows_folded=len(i.folded),
                includes=len(i.includes),
                arrived_at=i.arrived_at,
            )
            for i in queue.pending
        ],
    )


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
                await runtime.add_consumer(runtime.names.executor_queue.name, build_router(orchestrator))
                runtime.add_periodic("poller", orchestrator.poll_once, every=settings.poll_interval)
                runtime.start()
                app.state.orchestrator = orchestrator
                app.state.store = store
                yield
                app.state.orchestrator = None
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

    @app.get("/tasks", response_model=list[TaskView], tags=["executions"], summary="Queues per task")
    async def tasks(orchestrator: OrchestratorDep) -> list[TaskView]:
        return [_task_view(q, orchestrator) for q in await orchestrator.queues()]

    @app.get(
        "/executions/active",
        response_model=list[ExecutionRecord],
        tags=["executions"],
        summary="Executions in flight",
    )
    async def active_executions(orchestrator: OrchestratorDep) -> list[ExecutionRecord]:
        return await orchestrator.in_flight()

    @app.get("/executions", response_model=list[ExecutionRecord], tags=["executions"], summary="Recent executions")
    async def recent_executions(
        store: StoreDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> list[ExecutionRecord]:
        return await store.recent_executions(limit)

    @app.get(
        "/executions/{execution_id:path}",
        response_model=ExecutionRecord,
        tags=["executions"],
        summary="One execution (DataSync ARN or local id)",
    )
    async def execution(execution_id: str, store: StoreDep) -> ExecutionRecord:
        record = await store.get_execution(execution_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such execution")
        return record

    @app.get("/requests/{request_id}", tags=["executions"], summary="A Transfer Requested: accepted or rejected")
    async def transfer_request(request_id: str, store: StoreDep) -> dict[str, Any]:
        record = await store.get_request(request_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such request")
        return record

    return app
