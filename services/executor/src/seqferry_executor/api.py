"""HTTP routes (read-only): queues per task, executions in flight and recent, one execution, one request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from seqferry_executor.domain.executions import ExecutionRecord
from seqferry_executor.domain.queue import TaskQueue
from seqferry_executor.service.driver import Driver
from seqferry_executor.store import StateStore
from seqferry_shared.http import from_state


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


DriverDep = Annotated[Driver, Depends(from_state("driver", Driver, "executor"))]
StoreDep = Annotated[StateStore, Depends(from_state("store", StateStore, "executor"))]

router = APIRouter(tags=["executions"])


def _task_view(queue: TaskQueue, driver: Driver) -> TaskView:
    active = queue.active
    return TaskView(
        task=queue.task,
        version=queue.version,
        active_execution=active.execution_id if active else None,
        active_part=f"{active.part + 1}/{active.parts}" if active else None,
        starting=bool(active and active.starting),
        start_error=driver.backoff_of(queue.task),
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


@router.get("/tasks", response_model=list[TaskView], summary="Queues per task")
async def tasks(driver: DriverDep) -> list[TaskView]:
    return [_task_view(q, driver) for q in await driver.queues()]


@router.get(
    "/executions/active",
    response_model=list[ExecutionRecord],
    tags=["executions"],
    summary="Executions in flight",
)
async def active_executions(driver: DriverDep) -> list[ExecutionRecord]:
    return await driver.in_flight()


@router.get("/executions", response_model=list[ExecutionRecord], summary="Recent executions")
async def recent_executions(store: StoreDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[ExecutionRecord]:
    return await store.recent_executions(limit)


@router.get(
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


@router.get("/requests/{request_id}", summary="A Transfer Requested: accepted or rejected")
async def transfer_request(request_id: str, store: StoreDep) -> dict[str, Any]:
    record = await store.get_request(request_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such request")
    return record
