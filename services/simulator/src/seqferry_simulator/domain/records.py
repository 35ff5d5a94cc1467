"""The record of a folder the simulator wrote: what, where, when, how far (the ledger, ``store.py``, keeps them)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field


class RunState(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    ABANDONED = "abandoned"  # the process stopped before the run finished
    DELETED = "deleted"  # removed to respect the disk budget


class Kind(StrEnum):
    RUN = "run"
    PARITY = "parity"  # a reference-parity copy of the sample bucket


class RunRecord(BaseModel):
    run_id: str
    kind: Kind = Kind.RUN
    instrument: str | None = None
    sequencer_path: str = Field(description="NAS-absolute sequencer folder the run was written to.")
    nas_path: str = Field(description="NAS-absolute path of the run folder.")
    flowcell: str | None = None
    cycles: str | None = Field(default=None, description="Cycles per read, e.g. '151,10,10,151'.")
    total_cycles: int = 0
    cycles_done: int = Field(default=0, description="Cycles fully written when the record was last updated.")
    scale: float | None = None
    seed: int | None = None
    started_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    state: RunState = RunState.RUNNING
    files: int = 0
    bytes: int = 0
    markers: list[str] = Field(default_factory=list, description="Completion markers written, in order.")
    completion_status: str | None = Field(
        default=None, description="How the run ends (RunCompletionStatus.xml): CompletedAsPlanned or ...EndedEarly."
    )
    error: str | None = None
