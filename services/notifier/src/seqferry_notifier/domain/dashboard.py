"""Dashboard aggregates: what the reference CloudWatch dashboard showed, plus per-run progress.

Files and bytes transferred, top executions by files and by bytes, a transfer timeline (one bar per execution
and transferred bytes over time), an errors table and error count, a per-file error view, and each run's progress
towards delivery; over a range chosen on the page, from one hour to four weeks (the reference's default view).

Per-file failures come from the execution events: the local engine lists each entry it could not transfer with
its reason in ``problems`` (the first ``max_failures_reported``; older events named them only in the ``FilesFailed``
error message, ``"2 file(s) failed: <path>: <reason>; ..."``, which is still read); DataSync reports only a count,
whose names are in the task's CloudWatch log. A problem that stands is reported by every pass (the first one
ERROR, the later ones SUCCESS): it is shown once, as its newest report, and counted once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_notifier.domain.runs import RunRecord

TOP = 10
SERIES_BUCKETS = 60
ERRORS_SHOWN = 50
FILE_ERRORS_SHOWN = 200
MESSAGE_LIMIT = 200
MAX_RANGE = timedelta(weeks=4)
RANGES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
RANGES |= {"14d": timedelta(days=14), "28d": MAX_RANGE}
_FAILED = re.compile(r"^(?P<count>\d+) file\(s\) failed: (?P<list>.*?)(?:; and (?P<more>\d+) more)?$", re.DOTALL)
_ITEM = re.compile(r"^(?P<path>/.*?): (?P<reason>.+)$", re.DOTALL)


class Totals(BaseModel):
    executions: int
    running: int
    succeeded: int
    errors: int
    files_transferred: int
    bytes_transferred: int
    files_verified: int
    runs_in_progress: int
    runs_delivered: int


class ExecutionRow(BaseModel):
    execution_id: str
    task: str | None
    backend: str
    state: str
    files: int
    bytes: int
    started_at: datetime | None
    updated_at: datetime


class TimelineBar(BaseModel):
    execution_id: str
    task: str | None
    state: str
    start: datetime
    end: datetime
    running: bool


class SeriesPoint(BaseModel):
    at: datetime
    files: int
    bytes: int


class ErrorRow(BaseModel):
    execution_id: str
    task: str | None
    at: datetime
    code: str
    message: str


class FileErrorRow(BaseModel):
    execution_id: str
    task: str | None
    at: datetime
    path: str | None = Field(description="NAS path of the file; None when the backend reports only a count.")
    reason: str


class RunRow(BaseModel):
    run_id: str
    instrument: str | None
    status: str
    files_total: int
    bytes_total: int
    s3_files: int | None
    s3_bytes: int | None
    progress: float
    files_failed: int
    marker: str
    marker_seen: bool
    blockers: list[str]
    executions: int
    updated_at: datetime
    completed_at: datetime | None
    manifest: str | None


class Dashboard(BaseModel):
    generated_at: datetime
    window_start: datetime
    range: str = Field(description="The time range shown (1h to 28d).")
    truncated: bool = Field(default=False, description="More executions fell in the range than were read.")
    totals: Totals
    error_count: int
    states: dict[str, int]
    top_by_files: list[ExecutionRow]
    top_by_bytes: list[ExecutionRow]
    timeline: list[TimelineBar]
    series: list[SeriesPoint]
    series_step_s: float
    errors: list[ErrorRow]
    file_errors: list[FileErrorRow]
    file_errors_total: int = Field(description="Files that failed in the range, named or not.")
    runs: list[RunRow]


def range_of(name: str) -> timedelta:
    """A dashboard range by name (1h, 6h, 24h, 7d, 14d, 28d); raises ValueError naming the choices."""
    try:
        return RANGES[name]
    except KeyError:
        raise ValueError(f"range must be one of {', '.join(RANGES)}") from None


def file_failures(message: str) -> tuple[list[tuple[str, str]], int]:
    """(path, reason) of each file a ``FilesFailed`` message names, and how many more it only counts."""
    match = _FAILED.match(message)
    if match is None:
        return [], 0
    named = []
    for item in match.group("list").split("; "):
        found = _ITEM.match(item)
        if found:
            named.append((found.group("path"), found.group("reason")))
    return named, int(match.group("more") or 0)


def _named(record: ExecutionRecord) -> tuple[list[tuple[str, str]], int]:
    """The (path, reason) an execution names, and how many more failed files it only counts."""
    if record.problems:
        named = [(p.path, p.reason) for p in record.problems]
        return named, max(0, record.counters.files_failed - len(named))
    return file_failures(record.error.message) if record.error else ([], 0)


def _file_errors(failed: Sequence[ExecutionRecord]) -> tuple[list[FileErrorRow], int]:
    """Newest first; a (path, reason) already listed from a newer execution is the same standing problem."""
    rows: list[FileErrorRow] = []
    seen: set[tuple[str, str]] = set()
    total = 0
    for record in failed:
        at = record.finished_at or record.updated_at
        named, more = _named(record)
        fresh = [(p, r) for p, r in named if (p, r) not in seen]
        seen.update(fresh)
        unnamed = max(record.counters.files_failed, len(named) + more) - len(named)
        total += len(fresh) + unnamed
        rows.extend(
            FileErrorRow(execution_id=record.execution_id, task=record.task, at=at, path=p, reason=r[:MESSAGE_LIMIT])
            for p, r in fresh
        )
        if unnamed > 0:
            where = "see the execution's transfer log" if record.backend == "local" else "see the DataSync task's log"
            rows.append(
                FileErrorRow(
                    execution_id=record.execution_id,
                    task=record.task,
                    at=at,
                    path=None,
                    reason=f"{unnamed} more file(s) failed; {where}",
                )
            )
    return rows[:FILE_ERRORS_SHOWN], total


def _row(record: ExecutionRecord) -> ExecutionRow:
    return ExecutionRow(
        execution_id=record.execution_id,
        task=record.task,
        backend=record.backend,
        state=record.state.value,
        files=record.counters.files_transferred,
        bytes=record.counters.bytes_transferred,
        started_at=record.started_at,
        updated_at=record.updated_at,
    )


def _series(records: Sequence[ExecutionRecord], start: datetime, now: datetime) -> tuple[list[SeriesPoint], float]:
    samples: list[tuple[datetime, int, int]] = []
    for record in records:
        files = transferred = 0
        for entry in sorted(record.history, key=lambda e: e.at):
            samples.append(
                (entry.at, max(0, entry.files_transferred - files), max(0, entry.bytes_transferred - transferred))
            )
            files, transferred = max(files, entry.files_transferred), max(transferred, entry.bytes_transferred)
    samples = [s for s in samples if start <= s[0] <= now]
    first = min((s[0] for s in samples), default=now)
    step = max(1.0, (now - first).total_seconds() / SERIES_BUCKETS)
    buckets = [SeriesPoint(at=first + timedelta(seconds=step * i), files=0, bytes=0) for i in range(SERIES_BUCKETS)]
    for at, files, transferred in samples:
        index = min(SERIES_BUCKETS - 1, int((at - first).total_seconds() / step))
        buckets[index].files += files
        buckets[index].bytes += transferred
    return buckets, step


def _run_row(run: RunRecord) -> RunRow:
    scan = run.scan
    return RunRow(
        run_id=run.run_id,
        instrument=run.instrument.value if run.instrument else None,
        status=run.status.value,
        files_total=scan.files_total if scan else 0,
        bytes_total=scan.bytes_total if scan else 0,
        s3_files=run.s3_files,
        s3_bytes=run.s3_bytes,
        progress=round(run.progress, 4),
        files_failed=scan.files_failed if scan else 0,
        marker=run.marker,
        marker_seen=bool(scan and run.marker in scan.markers),
        blockers=run.blockers[:3],
        executions=len(run.executions),
        updated_at=run.updated_at,
        completed_at=run.completion.at if run.completion else None,
        manifest=run.completion.manifest_uri if run.completion else None,
    )


def build(
    executions: Sequence[ExecutionRecord],
    runs: Sequence[RunRecord],
    *,
    now: datetime,
    window: timedelta,
    range_name: str = "24h",
    truncated: bool = False,
) -> Dashboard:
    start = now - window
    recent = [e for e in executions if e.updated_at >= start]
    states = Counter(e.state.value for e in recent)
    failed = sorted((e for e in recent if e.state.value == "ERROR"), key=lambda e: e.updated_at, reverse=True)
    with_failed_files = sorted(
        (e for e in recent if e.counters.files_failed or (e.error and e.error.code == "FilesFailed")),
        key=lambda e: e.updated_at,
        reverse=True,
    )
    file_errors, file_errors_total = _file_errors(with_failed_files)
    totals = Totals(
        executions=len(recent),
        running=sum(1 for e in recent if not e.terminal),
        succeeded=states.get("SUCCESS", 0),
        errors=len(failed),
        files_transferred=sum(e.counters.files_transferred for e in recent),
        bytes_transferred=sum(e.counters.bytes_transferred for e in recent),
        files_verified=sum(e.counters.files_verified for e in recent),
        runs_in_progress=sum(1 for r in runs if r.completion is None),
        runs_delivered=sum(1 for r in runs if r.completion is not None),
    )
    timeline = [
        TimelineBar(
            execution_id=e.execution_id,
            task=e.task,
            state=e.state.value,
            start=e.started_at or e.first_seen_at,
            end=e.finished_at or now,
            running=not e.terminal,
        )
        for e in sorted(recent, key=lambda e: e.started_at or e.first_seen_at)
    ]
    series, step = _series(recent, start, now)
    errors = [
        ErrorRow(
            execution_id=e.execution_id,
            task=e.task,
            at=e.finished_at or e.updated_at,
            code=e.error.code if e.error else "unknown",
            message=(e.error.message if e.error else "")[:MESSAGE_LIMIT],
        )
        for e in failed[:ERRORS_SHOWN]
    ]
    return Dashboard(
        generated_at=now,
        window_start=start,
        range=range_name,
        truncated=truncated,
        totals=totals,
        error_count=len(failed),
        states=dict(states),
        top_by_files=[_row(e) for e in sorted(recent, key=lambda e: e.counters.files_transferred, reverse=True)[:TOP]],
        top_by_bytes=[_row(e) for e in sorted(recent, key=lambda e: e.counters.bytes_transferred, reverse=True)[:TOP]],
        timeline=timeline,
        series=series,
        series_step_s=step,
        errors=errors,
        file_errors=file_errors,
        file_errors_total=file_errors_total,
        runs=[_run_row(r) for r in sorted(runs, key=lambda r: r.updated_at, reverse=True)],
    )
