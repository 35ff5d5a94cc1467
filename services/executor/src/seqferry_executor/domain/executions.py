"""What the executor remembers about each execution, and when a status becomes an event.

A status is re-emitted as ``Transfer Execution State Changed`` only when its state changes; counters that move
within a state update the record (for the HTTP views) without an event. The event id of a state change is
derived from the execution id and the state, so a change published twice (a crash between publishing and
recording it) is one event to every consumer's idempotency.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from seqferry_shared.events.models import (
    Counters,
    ErrorInfo,
    FileProblem,
    Meta,
    RunSummary,
    TransferExecutionStateChanged,
    TransferState,
    Trigger,
)

STATE_NAMESPACE = uuid.UUID("0b6c7a52-93c4-4f0e-8d2e-5a1f4e7c9b13")

BackendName = Literal["datasync", "local"]


class StateSeen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: TransferState
    at: AwareDatetime


class ExecutionRecord(BaseModel):
    """One execution (one part of one work item) as persisted in the state table."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    backend: BackendName
    task: str
    trigger: Trigger
    correlation_id: str
    seq: int = Field(description="Work item in the task's queue.")
    part: int = Field(description="0-based part of the work item (patterns split over several executions).")
    parts: int
    includes: list[str]
    state: TransferState | None = Field(default=None, description="Last state emitted.")
    counters: Counters = Field(default_factory=Counters)
    runs: list[RunSummary] = Field(default_factory=list)
    error: ErrorInfo | None = None
    problems: list[FileProblem] = Field(default_factory=list, description="Entries not transferred (the first ones).")
    started_at: AwareDatetime
    updated_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    history: list[StateSeen] = Field(default_factory=list)
    trace: dict[str, str] = Field(default_factory=dict, description="W3C trace context of the triggering event.")

    @property
    def terminal(self) -> bool:
        return self.state is not None and self.state.terminal


def state_event_id(execution_id: str, state: TransferState) -> uuid.UUID:
    return uuid.uuid5(STATE_NAMESPACE, f"{execution_id}/{state.value}")


def state_event(record: ExecutionRecord, *, with_includes: bool = True) -> TransferExecutionStateChanged:
    if record.state is None:
        raise ValueError(f"execution {record.execution_id} has no state yet")
    return TransferExecutionStateChanged(
        meta=Meta(event_id=state_event_id(record.execution_id, record.state), correlation_id=record.correlation_id),
        execution_id=record.execution_id,
        backend=record.backend,
        task=record.task,
        state=record.state,
        trigger=record.trigger,
        includes=list(record.includes) if with_includes else [],
        counters=record.counters,
        runs=list(record.runs),
        error=record.error,
        problems=list(record.problems),
        started_at=record.started_at,
    )


def observe(
    record: ExecutionRecord,
    *,
    state: TransferState,
    counters: Counters,
    runs: list[RunSummary],
    error: ErrorInfo | None,
    now: datetime,
    problems: list[FileProblem] | None = None,
) -> tuple[ExecutionRecord, bool]:
    """Apply a status read from the backend; returns (record, state changed). Terminal records never change."""
    if record.terminal:
        return record, False
    problems = list(problems or [])
    changed_state = state != record.state
    unchanged = counters == record.counters and runs == record.runs and error == record.error
    if not changed_state and unchanged and problems == record.problems:
        return record, False
    updated = record.model_copy(
        update={
            "state": state,
            "counters": counters,
            "runs": list(runs),
            "error": error,
            "problems": problems,
            "updated_at": now,
            "ended_at": now if state.terminal else None,
            "history": [*record.history, StateSeen(state=state, at=now)] if changed_state else record.history,
        }
    )
    return updated, changed_state
