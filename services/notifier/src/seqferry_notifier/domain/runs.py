"""Runs: what the executions saw of each run folder, and the rule that says a run is completely in S3.

A run is delivered when all of these hold:

1. the latest execution that scanned the run folder (by start time) ended in SUCCESS, and its scan saw the
   instrument's completion marker, no file still pending (unstable) and no failed file;
2. the objects under the run's S3 prefix match that scan exactly: same number of files, same total bytes, and
   the completion marker object is there;
3. RunInfo.xml is in S3 and every lane it declares has exactly its cycles' base-call folders/files
   (``L00n/C{c}.1/`` or ``L00n/{c:04d}.bcl.bgzf`` by instrument).

A run is *incomplete* when rules 1 and 2 hold (the instrument wrote its completion marker and everything on the
NAS is in S3) but the instrument ended it early: its ``RunCompletionStatus.xml`` says ``UserEndedEarly`` or
``ExceptionEndedEarly``, or (instruments that write no such file) cycles RunInfo.xml declares are missing and
nothing changed for a grace period. It is reported as ``Run Transfer Failed`` (reason ``sequencing_incomplete``)
with a manifest of what was delivered, instead of waiting for cycles that will never come.

A run stalls when nothing about it grew (files and bytes seen on the NAS, objects in S3, files transferred) for the
configured deadline while it is not delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from seqferry_notifier.domain.runinfo import RunInfo, cycle_blockers, cycles_present
from seqferry_notifier.domain.runstatus import RunCompletion
from seqferry_shared.events.models import RunSummary, SequencingOutcome, TransferState
from seqferry_shared.sequencers import COPY_COMPLETE, Instrument, SequencerPath, instrument_of_run_folder, run_of

EXECUTIONS_LIMIT = 60
# An unidentified instrument waits for the marker written last by the instruments that write it, never earlier.
FALLBACK_MARKER = COPY_COMPLETE


class RunStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    STALLED = "stalled"


class RunExecution(BaseModel):
    execution_id: str
    state: TransferState
    started_at: datetime
    observed_at: datetime
    summary: RunSummary | None = None


class Completion(BaseModel):
    at: datetime
    files: int
    bytes: int
    marker: str
    manifest_uri: str
    event_id: str


class Incompletion(BaseModel):
    """A run the instrument ended early, reported once with what was delivered."""

    at: datetime
    outcome: SequencingOutcome
    files: int
    bytes: int
    manifest_uri: str
    event_id: str


class RunRecord(BaseModel):
    run_id: str
    instrument: Instrument | None = None
    nas_path: str
    s3_prefix: str
    bucket: str
    first_seen_at: datetime
    updated_at: datetime
    last_progress_at: datetime
    executions: dict[str, RunExecution] = Field(default_factory=dict)
    s3_files: int | None = None
    s3_bytes: int | None = None
    listed_at: datetime | None = None
    blockers: list[str] = Field(default_factory=list)
    completion: Completion | None = None
    incomplete: Incompletion | None = None
    failed_executions: list[str] = Field(default_factory=list)
    stalled_since: datetime | None = None
    correlation_ids: list[str] = Field(default_factory=list)

    @property
    def marker(self) -> str:
        return completion_marker(self.instrument)

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.s3_prefix}"

    @property
    def latest(self) -> RunExecution | None:
        if not self.executions:
            return None
        return max(self.executions.values(), key=lambda e: (e.started_at, e.observed_at, e.execution_id))

    @property
    def scan(self) -> RunSummary | None:
        """The newest scan of the run folder (the latest execution that reported one)."""
        scanned = [e for e in self.executions.values() if e.summary is not None]
        if not scanned:
            return None
        newest = max(scanned, key=lambda e: (e.started_at, e.observed_at, e.execution_id))
        return newest.summary

    @property
    def status(self) -> RunStatus:
        if self.completion is not None:
            return RunStatus.COMPLETED
        if self.incomplete is not None:
            return RunStatus.INCOMPLETE
        if self.stalled_since is not None:
            return RunStatus.STALLED
        latest = self.latest
        if latest is not None and latest.state == TransferState.ERROR:
            return RunStatus.FAILED
        # A problem an earlier execution reported still stands (a later pass ended SUCCESS without repeating it).
        if latest is not None and latest.summary is not None and latest.summary.files_failed:
            return RunStatus.FAILED
        return RunStatus.IN_PROGRESS

    @property
    def progress(self) -> float:
        """Share of the run folder's bytes (files when empty) found in S3, 0..1."""
        scan = self.scan
        if self.completion is not None:
            return 1.0
        if scan is None or self.s3_files is None:
            return 0.0
        if scan.bytes_total > 0 and self.s3_bytes is not None:
            return min(1.0, self.s3_bytes / scan.bytes_total)
        return min(1.0, self.s3_files / scan.files_total) if scan.files_total else 0.0


def summary_problem(summary: RunSummary, sequencers: Sequence[SequencerPath]) -> str | None:
    """Why a reported run summary cannot be a run of this lab, or None if it can.

    A summary comes from an event, and events are input: the notifier lists ``s3_prefix`` and may announce what it
    finds there. Only a run folder directly under a configured sequencer path is a run, and its prefix is its path.
    """
    found = run_of(summary.nas_path.rstrip("/") + "/", list(sequencers))
    if found is None:
        return f"nas_path {summary.nas_path[:300]!r} is not under a configured sequencer path"
    root, run_id = found
    folder = f"{root.path.rstrip('/')}/{run_id}"
    if summary.nas_path.rstrip("/") != folder:
        return f"nas_path {summary.nas_path[:300]!r} is not a run folder (one level below {root.path})"
    if summary.run_id != run_id:
        return f"run_id {summary.run_id[:200]!r} is not the folder's name {run_id[:200]!r}"
    if summary.s3_prefix != folder.lstrip("/") + "/":
        return f"s3_prefix {summary.s3_prefix[:300]!r} is not the run folder's prefix {folder.lstrip('/')!r}/"
    return None


def identify_instrument(nas_path: str, run_id: str, sequencers: Sequence[SequencerPath]) -> Instrument | None:
    """The run's instrument from its configured sequencer path, else (an ad-hoc root) from the run folder's name."""
    found = run_of(nas_path.rstrip("/") + "/", sequencers)
    if found is not None:
        return found[0].instrument
    return instrument_of_run_folder(run_id)


def completion_marker(instrument: Instrument | None) -> str:
    return instrument.completion_marker if instrument is not None else FALLBACK_MARKER


def _signature(run: RunRecord) -> tuple[int, int, int, int, int]:
    totals = [e.summary for e in run.executions.values() if e.summary is not None]
    return (
        max((s.files_total for s in totals), default=0),
        max((s.bytes_total for s in totals), default=0),
        run.s3_files or 0,
        run.s3_bytes or 0,
        sum(s.files_transferred for s in totals),
    )


def _progressed(before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    return any(a > b for a, b in zip(after, before, strict=True))


def _mark_progress(run: RunRecord, before: tuple[int, ...], at: datetime) -> None:
    if _progressed(before, _signature(run)):
        run.last_progress_at = max(run.last_progress_at, at)
        run.stalled_since = None


def new_run(summary: RunSummary, bucket: str, instrument: Instrument | None, at: datetime) -> RunRecord:
    return RunRecord(
        run_id=summary.run_id,
        instrument=instrument,
        nas_path=summary.nas_path,
        s3_prefix=summary.s3_prefix,
        bucket=bucket,
        first_seen_at=at,
        updated_at=at,
        last_progress_at=at,
    )


def observe_execution(
    run: RunRecord,
    *,
    execution_id: str,
    state: TransferState,
    started_at: datetime,
    at: datetime,
    summary: RunSummary | None = None,
    correlation_id: str | None = None,
) -> RunRecord:
    """Record what one execution did in (or its state while touching) this run."""
    run = run.model_copy(deep=True)
    before = _signature(run)
    current = run.executions.get(execution_id)
    if current is None:
        current = RunExecution(execution_id=execution_id, state=state, started_at=started_at, observed_at=at)
    elif not current.state.terminal:
        current.state = state
    current.started_at = min(current.started_at, started_at)
    if summary is not None and (current.summary is None or at >= current.observed_at):
        current.summary = summary
    current.observed_at = max(current.observed_at, at)
    run.executions[execution_id] = current
    if len(run.executions) > EXECUTIONS_LIMIT:
        oldest = sorted(run.executions.values(), key=lambda e: (e.started_at, e.execution_id))
        for stale in oldest[: len(run.executions) - EXECUTIONS_LIMIT]:
            del run.executions[stale.execution_id]
    if correlation_id and correlation_id not in run.correlation_ids and len(run.correlation_ids) < EXECUTIONS_LIMIT:
        run.correlation_ids.append(correlation_id)
    run.updated_at = max(run.updated_at, at)
    _mark_progress(run, before, at)
    return run


def record_listing(run: RunRecord, files: int, total_bytes: int, blockers: list[str], at: datetime) -> RunRecord:
    run = run.model_copy(deep=True)
    before = _signature(run)
    run.s3_files = files
    run.s3_bytes = total_bytes
    run.listed_at = at
    run.blockers = blockers
    run.updated_at = max(run.updated_at, at)
    _mark_progress(run, before, at)
    return run


def listing_due(run: RunRecord, now: datetime, min_interval: timedelta) -> bool:
    return run.listed_at is None or now - run.listed_at >= min_interval


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    complete: bool
    blockers: tuple[str, ...]
    files: int
    bytes: int
    marker: str
    incomplete: SequencingOutcome | None = None
    """Set when the run is settled as ended early (see the module docstring)."""


def candidate_blockers(run: RunRecord) -> list[str]:
    """What keeps the executions' side of the rule (1.) from holding, without looking at S3."""
    if run.completion is not None:
        return ["already delivered"]
    if run.incomplete is not None:
        return ["already reported incomplete"]
    latest = run.latest
    if latest is None:
        return ["no execution has scanned the run folder yet"]
    blockers = []
    if latest.state != TransferState.SUCCESS:
        blockers.append(f"latest execution {latest.execution_id} is {latest.state.value}")
    scan = latest.summary
    if scan is None:
        return [*blockers, f"latest execution {latest.execution_id} reported no scan of the run folder"]
    if run.marker not in scan.markers:
        blockers.append(f"completion marker {run.marker} not seen yet")
    if scan.files_pending:
        blockers.append(f"{scan.files_pending} file(s) still being written")
    if scan.files_failed:
        blockers.append(f"{scan.files_failed} file(s) failed to transfer")
    if scan.files_total <= 0:
        blockers.append("the scan saw an empty run folder")
    return blockers


def decide(
    run: RunRecord,
    objects: Sequence[ObjectInfo],
    run_info: RunInfo | None,
    *,
    run_info_error: str | None = None,
    check_cycles: bool = True,
    completion: RunCompletion | None = None,
    quiet: bool = False,
) -> Verdict:
    """Apply the whole delivery rule to the run and a listing of its S3 prefix.

    ``completion`` is the run's RunCompletionStatus.xml when it is in S3; ``quiet`` says the run showed no progress
    for the grace period after which missing cycles mean the run ended early.
    """
    files = len(objects)
    total_bytes = sum(o.size for o in objects)
    blockers = candidate_blockers(run)
    latest = run.latest
    scan = latest.summary if latest is not None else None
    if scan is not None:
        if files != scan.files_total:
            blockers.append(f"S3 has {files} object(s), the run folder {scan.files_total} file(s)")
        if total_bytes != scan.bytes_total:
            blockers.append(f"S3 holds {total_bytes} bytes, the run folder {scan.bytes_total}")
    keys = {o.key for o in objects}
    if f"{run.s3_prefix}{run.marker}" not in keys:
        blockers.append(f"{run.marker} is not in S3 yet")
    settled = not blockers  # the instrument is done and everything it wrote is in S3
    missing: list[str] = []
    present: int | None = None
    if check_cycles:
        if run_info_error is not None:
            blockers.append(run_info_error)
        elif run_info is None:
            blockers.append("RunInfo.xml is not in S3 yet")
        else:
            relative = [k[len(run.s3_prefix) :] for k in keys if k.startswith(run.s3_prefix)]
            missing = cycle_blockers(run_info, relative, run.instrument)
            present = cycles_present(run_info, relative, run.instrument)
            blockers.extend(missing)
    outcome = None
    if settled and completion is not None and not completion.completed:
        # The instrument says it ended the run early.
        outcome = SequencingOutcome(
            status=completion.status,
            cycles_planned=completion.cycles_planned if run_info is None else run_info.total_cycles,
            cycles_completed=completion.cycles_completed if present is None else present,
            detail=completion.error or "; ".join(missing),
        )
    elif settled and missing and completion is None and quiet:
        # Completion marker written, every file in S3, cycles missing, nothing moving: the run ended early.
        outcome = SequencingOutcome(
            status="Incomplete",
            cycles_planned=run_info.total_cycles if run_info is not None else None,
            cycles_completed=present,
            detail="; ".join(missing),
        )
    return Verdict(
        complete=not blockers,
        blockers=tuple(blockers),
        files=files,
        bytes=total_bytes,
        marker=run.marker,
        incomplete=outcome,
    )


def delivery_latency(run: RunRecord, at: datetime) -> float | None:
    """Seconds from the start of the first execution whose scan saw the completion marker to ``at``."""
    seen = [e.started_at for e in run.executions.values() if e.summary is not None and run.marker in e.summary.markers]
    return max(0.0, (at - min(seen)).total_seconds()) if seen else None


def mark_completed(run: RunRecord, completion: Completion) -> RunRecord:
    run = run.model_copy(deep=True)
    if run.completion is None:
        run.completion = completion
        run.blockers = []
        run.stalled_since = None
    run.updated_at = max(run.updated_at, completion.at)
    return run


def mark_failed_execution(run: RunRecord, execution_id: str, at: datetime) -> RunRecord:
    run = run.model_copy(deep=True)
    if execution_id not in run.failed_executions:
        run.failed_executions.append(execution_id)
    run.updated_at = max(run.updated_at, at)
    return run


def mark_incomplete(run: RunRecord, incompletion: Incompletion) -> RunRecord:
    run = run.model_copy(deep=True)
    if run.incomplete is None and run.completion is None:
        run.incomplete = incompletion
        run.blockers = []
        run.stalled_since = None
    run.updated_at = max(run.updated_at, incompletion.at)
    return run


def is_stalled(run: RunRecord, now: datetime, deadline: timedelta) -> bool:
    return (
        run.completion is None
        and run.incomplete is None
        and run.stalled_since is None
        and now - run.last_progress_at > deadline
    )


def mark_stalled(run: RunRecord, now: datetime) -> RunRecord:
    run = run.model_copy(deep=True)
    run.stalled_since = now
    run.updated_at = max(run.updated_at, now)
    return run


def manifest_key(run: RunRecord, name_template: str) -> str:
    """Key of the checksum manifest: next to the run folder (a sibling), so the run prefix mirrors the NAS exactly."""
    parent = run.s3_prefix.rstrip("/").rpartition("/")[0]
    name = name_template.format(run_id=run.run_id)
    return f"{parent}/{name}" if parent else name
