"""Execution history: fold observations from three sources into one record per execution.

Observations arrive out of order and more than once: the executor's ``Transfer Execution State Changed`` (state and
counters), DataSync's own best-effort state-change event (state only) and ``DescribeTaskExecution`` (state,
counters, error; the source of truth). The fold is idempotent and order-tolerant: a terminal state is final (the
first terminal observation wins), non-terminal states only move forward, and counters are taken from the newest
observation that carries them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from seqferry_shared.events.models import Counters, ErrorInfo, FileProblem, TransferState, Trigger

HISTORY_LIMIT = 100
RUN_IDS_LIMIT = 200


_DATASYNC_EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:datasync:[a-z0-9-]*:\d*:task/task-[0-9a-zA-Z]+/execution/(?P<exec>exec-[0-9a-zA-Z]+)$"
)
_DATASYNC_TASK_ARN = re.compile(r"^arn:aws[a-z-]*:datasync:[a-z0-9-]*:\d*:task/task-[0-9a-zA-Z]+$")


class Source(StrEnum):
    """Where an observation came from."""

    EXECUTOR = "executor"
    DATASYNC_EVENT = "datasync_event"
    DESCRIBE = "describe"


def execution_key(execution_id: str) -> str:
    """Stable key of an execution: DataSync ARNs and bare ``exec-…`` ids of the same execution share one key."""
    match = _DATASYNC_EXECUTION_ARN.match(execution_id)
    return match.group("exec") if match else execution_id


def datasync_arn(execution_id: str, task: str | None) -> str | None:
    """The execution's DataSync ARN, when the id or the task tells it."""
    if _DATASYNC_EXECUTION_ARN.match(execution_id):
        return execution_id
    if execution_id.startswith("exec-") and task and _DATASYNC_TASK_ARN.match(task):
        return f"{task}/execution/{execution_id}"
    return None


def parse_state(value: object) -> TransferState | None:
    """DataSync status string → state; older/emulated vocabularies mapped, unknown values ignored."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if text == "INITIALIZING":
        return TransferState.LAUNCHING
    try:
        return TransferState(text)
    except ValueError:
        return None


class Observation(BaseModel):
    """One thing seen about an execution at one moment."""

    model_config = ConfigDict(frozen=True)

    execution_id: str
    at: datetime
    source: Source
    state: TransferState | None = None
    backend: str | None = None
    task: str | None = None
    arn: str | None = None
    counters: Counters | None = None
    error: ErrorInfo | None = None
    problems: tuple[FileProblem, ...] | None = None
    started_at: datetime | None = None
    trigger: Trigger | None = None
    includes: tuple[str, ...] | None = None
    run_ids: tuple[str, ...] = ()
    correlation_id: str | None = None


class HistoryEntry(BaseModel):
    at: datetime
    source: Source
    state: TransferState
    transition: bool = Field(description="The state changed here (otherwise a progress sample).")
    files_transferred: int = 0
    bytes_transferred: int = 0


class Reconcile(BaseModel):
    """Bookkeeping of DescribeTaskExecution calls for DataSync executions."""

    last_described_at: datetime | None = None
    describes: int = 0
    failures: int = 0
    unreconcilable: bool = Field(default=False, description="DataSync does not know this execution; stop polling.")
    last_error: str | None = None


class ExecutionRecord(BaseModel):
    execution_id: str
    arn: str | None = None
    backend: str = "unknown"
    task: str | None = None
    state: TransferState
    counters: Counters = Field(default_factory=Counters)
    counters_at: datetime | None = None
    error: ErrorInfo | None = None
    problems: list[FileProblem] = Field(
        default_factory=list, description="Entries the execution could not transfer (path escaped, reason)."
    )
    trigger: Trigger | None = None
    includes: list[str] = Field(default_factory=list)
    run_ids: list[str] = Field(default_factory=list)
    correlation_id: str | None = None
    first_seen_at: datetime
    started_at: datetime | None = None
    updated_at: datetime
    finished_at: datetime | None = None
    runs_discovered_at: datetime | None = Field(
        default=None, description="When the run folders of this (DataSync) execution were looked up in S3."
    )
    history: list[HistoryEntry] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    reconcile: Reconcile = Field(default_factory=Reconcile)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def needs_run_discovery(self) -> bool:
        """A successful DataSync execution whose run folders have not been looked up in the bucket yet."""
        return (
            self.state == TransferState.SUCCESS
            and self.backend == "datasync"
            and bool(self.includes)
            and self.runs_discovered_at is None
        )

    @property
    def awaits_includes(self) -> bool:
        """A successful DataSync execution reported without its patterns (an executor event cut to fit the bus's
        size limit): DescribeTaskExecution, once, gives them."""
        return (
            self.state == TransferState.SUCCESS
            and self.backend == "datasync"
            and not self.includes
            and self.arn is not None
            and self.runs_discovered_at is None
            and self.reconcile.describes == 0
        )

    @property
    def pollable(self) -> bool:
        """A DataSync execution whose state only DescribeTaskExecution can settle."""
        return not self.terminal and self.arn is not None and not self.reconcile.unreconcilable


@dataclass(frozen=True, slots=True)
class FoldResult:
    record: ExecutionRecord
    changed: bool
    state_changed: bool
    became_terminal: TransferState | None


def _accept_state(current: TransferState, new: TransferState) -> bool:
    if current.terminal:
        return False
    return new.rank >= current.rank and new != current


def _trim_history(history: list[HistoryEntry]) -> list[HistoryEntry]:
    while len(history) > HISTORY_LIMIT:
        # Drop the oldest progress sample first: transitions are the history people read.
        index = next((i for i, e in enumerate(history) if not e.transition), 0)
        del history[index]
    return history


def fold(record: ExecutionRecord | None, obs: Observation) -> FoldResult:
    """Apply one observation; returns the new record and what changed."""
    key = execution_key(obs.execution_id)
    if record is None:
        record = ExecutionRecord(
            execution_id=key,
            state=obs.state or TransferState.QUEUED,
            first_seen_at=obs.at,
            updated_at=obs.at,
        )
        before_state: TransferState | None = None
        created = True
    else:
        record = record.model_copy(deep=True)
        before_state = record.state
        created = False
    before = record.model_dump()

    arn = obs.arn or datasync_arn(obs.execution_id, obs.task)
    if arn and not record.arn:
        record.arn = arn
    if obs.backend and record.backend == "unknown":
        record.backend = obs.backend
    if obs.task and not record.task:
        record.task = obs.task
    if obs.trigger and not record.trigger:
        record.trigger = obs.trigger
    if obs.includes is not None and not record.includes:
        record.includes = list(obs.includes)
    if obs.correlation_id and not record.correlation_id:
        record.correlation_id = obs.correlation_id
    if obs.started_at and (record.started_at is None or obs.started_at < record.started_at):
        record.started_at = obs.started_at
    for run_id in obs.run_ids:
        if run_id not in record.run_ids and len(record.run_ids) < RUN_IDS_LIMIT:
            record.run_ids.append(run_id)
    if obs.source not in record.sources:
        record.sources.append(obs.source)

    state_changed = created
    if obs.state is not None and (created or _accept_state(record.state, obs.state)):
        state_changed = state_changed or obs.state != record.state
        record.state = obs.state
        if obs.state.terminal:
            record.finished_at = obs.at
    if obs.error is not None and record.error is None and (record.state == TransferState.ERROR or obs.state is None):
        record.error = obs.error

    counters_changed = False
    if obs.counters is not None and (
        record.counters_at is None or obs.at >= record.counters_at or (state_changed and record.terminal)
    ):
        counters_changed = obs.counters != record.counters
        record.counters = obs.counters
        record.counters_at = obs.at if record.counters_at is None else max(record.counters_at, obs.at)
        if obs.problems is not None:
            record.problems = list(obs.problems)

    if state_changed or counters_changed:
        record.history.append(
            HistoryEntry(
                at=obs.at,
                source=obs.source,
                state=record.state,
                transition=state_changed,
                files_transferred=record.counters.files_transferred,
                bytes_transferred=record.counters.bytes_transferred,
            )
        )
        record.history.sort(key=lambda e: e.at)
        _trim_history(record.history)

    changed = created or record.model_dump() != before
    if changed:
        record.updated_at = max(record.updated_at, obs.at)
    became_terminal = record.state if record.terminal and (before_state is None or not before_state.terminal) else None
    return FoldResult(record=record, changed=changed, state_changed=state_changed, became_terminal=became_terminal)


def note_discovered(record: ExecutionRecord, run_ids: list[str], at: datetime) -> ExecutionRecord:
    """Remember that the execution's run folders were looked up in S3, and which runs they are."""
    record = record.model_copy(deep=True)
    record.runs_discovered_at = at
    for run_id in run_ids:
        if run_id not in record.run_ids and len(record.run_ids) < RUN_IDS_LIMIT:
            record.run_ids.append(run_id)
    return record


def note_describe(record: ExecutionRecord, at: datetime, *, error: str | None, not_found: bool) -> ExecutionRecord:
    """Remember a DescribeTaskExecution attempt (successful or not) for the poller."""
    record = record.model_copy(deep=True)
    record.reconcile.last_described_at = at
    record.reconcile.describes += 1
    if error is not None:
        record.reconcile.failures += 1
        record.reconcile.last_error = error[:300]
    if not_found:
        record.reconcile.unreconcilable = True
    return record
