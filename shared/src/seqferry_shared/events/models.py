"""Event contracts: every ``detail`` that travels on the seqferry bus.

Each model names its EventBridge ``detail-type`` and default ``source``. The JSON Schema of each model is
exported to ``docs/events/`` (see :mod:`seqferry_shared.events.schema`); a test keeps the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
AWS_SOURCE_PREFIX = "aws."


def utc_now() -> datetime:
    return datetime.now(UTC)


class Meta(BaseModel):
    """Envelope-independent metadata carried by every event detail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(default_factory=uuid4, description="Idempotency key of this event.")
    schema_version: str = Field(default=SCHEMA_VERSION, description="Version of the detail schema.")
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="When the producer emitted it.")
    traceparent: str | None = Field(default=None, description="W3C trace context of the producer.")
    tracestate: str | None = Field(default=None, description="W3C trace state of the producer.")
    correlation_id: str | None = Field(default=None, description="Ties a request to the executions and runs it caused.")


class EventDetail(BaseModel):
    """Base of every event detail."""

    model_config = ConfigDict(extra="forbid")

    DETAIL_TYPE: ClassVar[str]
    SOURCE: ClassVar[str]

    meta: Meta = Field(default_factory=Meta)

    @classmethod
    def trusts(cls, source: str) -> bool:
        """True if an event of this type from ``source`` may be acted on: by default only its own producer's."""
        return source == cls.SOURCE

    @classmethod
    def source_filter(cls) -> list[Any]:
        """The EventBridge pattern value matching exactly the sources :meth:`trusts`."""
        return [cls.SOURCE]


class TransferState(StrEnum):
    """DataSync's task-execution status vocabulary, used by both backends."""

    QUEUED = "QUEUED"
    LAUNCHING = "LAUNCHING"
    PREPARING = "PREPARING"
    TRANSFERRING = "TRANSFERRING"
    VERIFYING = "VERIFYING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLING = "CANCELLING"

    @property
    def terminal(self) -> bool:
        return self in (TransferState.SUCCESS, TransferState.ERROR)

    @property
    def rank(self) -> int:
        """Forward order of an execution's states (CANCELLING ends in ERROR); observers never move backwards."""
        return _STATE_RANK[self]


_STATE_RANK: dict[TransferState, int] = {
    TransferState.QUEUED: 0,
    TransferState.LAUNCHING: 1,
    TransferState.PREPARING: 2,
    TransferState.TRANSFERRING: 3,
    TransferState.VERIFYING: 4,
    TransferState.CANCELLING: 5,
    TransferState.SUCCESS: 6,
    TransferState.ERROR: 6,
}


class TransferWindowOpened(EventDetail):
    """The scheduler opened a transfer window for one task."""

    DETAIL_TYPE: ClassVar[str] = "Transfer Window Opened"
    SOURCE: ClassVar[str] = "seqferry.scheduler"

    task: str = Field(description="Transfer task the window is for (DataSync task name or local task).")
    tick: int = Field(description="Tick number: window end as whole seconds since the epoch / interval.")
    window_start: AwareDatetime
    window_end: AwareDatetime
    time_zone: str = Field(description="IANA time zone of the lab, used to compute run-folder dates.")
    includes: list[str] = Field(min_length=1, description="Include patterns, DataSync filter syntax.")


class TransferRequested(EventDetail):
    """Public contract: anyone may ask seqferry to transfer paths from the NAS."""

    DETAIL_TYPE: ClassVar[str] = "Transfer Requested"
    SOURCE: ClassVar[str] = "seqferry.adhoc"

    @classmethod
    def trusts(cls, source: str) -> bool:
        # The public contract: a LIMS, a pipeline or a person may ask, under any source of their own; AWS services
        # (``aws.*``, which only AWS can send) never do.
        return not source.startswith(AWS_SOURCE_PREFIX)

    @classmethod
    def source_filter(cls) -> list[Any]:
        return [{"anything-but": {"prefix": AWS_SOURCE_PREFIX}}]

    request_id: str = Field(min_length=1, max_length=128, description="Caller's id of this request.")
    task: str | None = Field(default=None, description="Task to run it on; the executor's default if unset.")
    includes: list[str] = Field(
        min_length=1,
        description="Absolute NAS paths; `*` allowed only as the last character; under the configured roots.",
    )
    reason: str = Field(default="", max_length=1024, description="Why the transfer is requested.")
    requested_by: str = Field(default="unknown", max_length=256, description="Person or system asking.")


class Counters(BaseModel):
    """DataSync-style execution counters."""

    model_config = ConfigDict(extra="forbid")

    files_estimated: int = 0
    bytes_estimated: int = 0
    files_transferred: int = 0
    bytes_transferred: int = 0
    files_verified: int = 0
    bytes_verified: int = 0
    files_skipped: int = 0
    files_failed: int = 0


class RunSummary(BaseModel):
    """What one execution saw and did in one run folder."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(description="Run folder name.")
    nas_path: str = Field(description="Absolute NAS path of the run folder.")
    s3_prefix: str = Field(description="Key prefix of the run folder in the bucket (ends with '/').")
    files_total: int = Field(default=0, description="Files in the run folder when the execution scanned it.")
    bytes_total: int = Field(default=0, description="Bytes in the run folder when the execution scanned it.")
    files_transferred: int = 0
    bytes_transferred: int = 0
    files_verified: int = 0
    files_failed: int = 0
    files_pending: int = Field(default=0, description="Files not yet stable, left for a later pass.")
    markers: list[str] = Field(default_factory=list, description="Completion markers present in the folder.")


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str


class FileProblem(BaseModel):
    """One NAS entry an execution could not transfer, and why."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description=(
            "NAS path, escaped as object keys are: bytes that are not UTF-8 and control or invisible formatting "
            "characters written %XX."
        )
    )
    reason: str = Field(
        description="Why it was not transferred, e.g. 'FIFO (named pipe): not a regular file, not read'."
    )


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["window", "request"]
    id: str = Field(description="Window tick or request id.")


class TransferExecutionStateChanged(EventDetail):
    """A transfer execution (DataSync or local) changed state."""

    DETAIL_TYPE: ClassVar[str] = "Transfer Execution State Changed"
    SOURCE: ClassVar[str] = "seqferry.executor"

    execution_id: str
    backend: Literal["datasync", "local"]
    task: str
    state: TransferState
    trigger: Trigger
    includes: list[str] = Field(default_factory=list)
    counters: Counters = Field(default_factory=Counters)
    runs: list[RunSummary] = Field(default_factory=list)
    error: ErrorInfo | None = None
    problems: list[FileProblem] = Field(
        default_factory=list,
        description=(
            "Entries not transferred, with the reason (the first ones; counters.files_failed counts them all). "
            "A SUCCESS may list problems an earlier execution already reported as ERROR: they still stand."
        ),
    )
    started_at: AwareDatetime | None = None


class RunTransferCompleted(EventDetail):
    """A whole run folder is in S3, verified: the signal downstream pipelines wait for."""

    DETAIL_TYPE: ClassVar[str] = "Run Transfer Completed"
    SOURCE: ClassVar[str] = "seqferry.notifier"

    run_id: str
    instrument: str
    nas_path: str
    s3_uri: str
    files: int
    bytes: int
    completion_marker: str
    checksum_manifest: str = Field(description="S3 URI of the checksum manifest written next to the run.")
    executions: list[str] = Field(default_factory=list)


class SequencingOutcome(BaseModel):
    """How the instrument ended a run that did not complete as planned."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(
        description="RunCompletionStatus.xml's CompletionStatus (UserEndedEarly, ExceptionEndedEarly, ...), or "
        "'Incomplete' when the instrument wrote its completion marker without every cycle RunInfo.xml declares."
    )
    cycles_planned: int | None = Field(default=None, description="Cycles RunInfo.xml declares.")
    cycles_completed: int | None = Field(default=None, description="Cycles sequenced (per lane, the fewest).")
    detail: str = Field(default="", description="The instrument's error description, or what is missing.")


class RunTransferFailed(EventDetail):
    """A run could not be delivered whole: an execution failed, the run stalled past its deadline, or the
    instrument ended it early (the files it did write are in S3, listed in the checksum manifest)."""

    DETAIL_TYPE: ClassVar[str] = "Run Transfer Failed"
    SOURCE: ClassVar[str] = "seqferry.notifier"

    run_id: str
    instrument: str
    nas_path: str
    s3_uri: str
    reason: Literal["execution_error", "stalled", "sequencing_incomplete"]
    error: ErrorInfo | None = None
    sequencing: SequencingOutcome | None = Field(
        default=None, description="Set when reason is sequencing_incomplete: how the run ended."
    )
    files: int = 0
    bytes: int = 0
    checksum_manifest: str | None = Field(
        default=None, description="S3 URI of the manifest of what was delivered (sequencing_incomplete only)."
    )
    executions: list[str] = Field(default_factory=list)


class RejectedLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(description="1-based line number in the manifest.")
    text: str = Field(description="The line, escaped and cut to 200 characters.")
    reason: str


class AdhocManifestProcessed(EventDetail):
    """An ad-hoc manifest was read and validated."""

    DETAIL_TYPE: ClassVar[str] = "Adhoc Manifest Processed"
    SOURCE: ClassVar[str] = "seqferry.adhoc"

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    accepted: list[str] = Field(default_factory=list)
    rejected: list[RejectedLine] = Field(default_factory=list)
    request_ids: list[str] = Field(default_factory=list)
    result_key: str
    accepted_count: int | None = Field(default=None, description="Accepted patterns in all (the list may be cut).")
    rejected_count: int | None = Field(default=None, description="Rejected lines in all (the list may be cut).")
    truncated: bool = Field(default=False, description="True when the lists were cut to fit the event size limit.")


class SequencingRunStarted(EventDetail):
    DETAIL_TYPE: ClassVar[str] = "Sequencing Run Started"
    SOURCE: ClassVar[str] = "seqferry.simulator"

    run_id: str
    instrument: str
    path: str = Field(description="Absolute NAS path of the run folder.")
    cycles: int = 0


class SequencingRunCompleted(EventDetail):
    DETAIL_TYPE: ClassVar[str] = "Sequencing Run Completed"
    SOURCE: ClassVar[str] = "seqferry.simulator"

    run_id: str
    instrument: str
    path: str
    cycles: int = Field(default=0, description="Cycles planned.")
    cycles_completed: int | None = Field(default=None, description="Cycles sequenced (fewer when stopped early).")
    completion_status: str = Field(
        default="CompletedAsPlanned",
        description="As RunCompletionStatus.xml says it: CompletedAsPlanned, UserEndedEarly or ExceptionEndedEarly.",
    )
    files: int = 0
    bytes: int = 0


ALL_EVENTS: tuple[type[EventDetail], ...] = (
    TransferWindowOpened,
    TransferRequested,
    TransferExecutionStateChanged,
    RunTransferCompleted,
    RunTransferFailed,
    AdhocManifestProcessed,
    SequencingRunStarted,
    SequencingRunCompleted,
)

BY_DETAIL_TYPE: dict[str, type[EventDetail]] = {m.DETAIL_TYPE: m for m in ALL_EVENTS}
