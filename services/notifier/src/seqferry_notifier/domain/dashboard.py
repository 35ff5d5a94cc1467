"""Dashboard aggregates: what the reference CloudWatch dashboard showed, plus per-run progress.

Files and bytes transferred, top executions by files and by bytes, a transfer timeline (one bar per execution
and transferred bytes over time), an errors table and error count, and each run's progress towards delivery.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel

from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_notifier.domain.runs import RunRecord

TOP = 10
SERIES_BUCKETS = 60
ERRORS_SHOWN = 50
MESSAGE_LIMIT = 200


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


class RunRow(BaseModel):
    run_id: str
    instrument: str | None
    status: str
    files_total: int
    bytes_total: int
    s3_files: int | None
    s3_bytes: int | None
    progress: float
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
    totals: Totals
    error_count: int
    states: dict[str, int]
    top_by_files: list[ExecutionRow]
    top_by_bytes: list[ExecutionRow]
    timeline: list[TimelineBar]
    series: list[SeriesPoint]
    series_step_s: float
    errors: list[ErrorRow]
    runs: list[RunRow]


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
        marker=run.marker,
        marker_seen=bool(scan and run.marker in scan.markers),
        blockers=run.blockers[:3],
        executions=len(run.executions),
        updated_at=run.updated_at,
        completed_at=run.completion.at if run.completion else None,
        manifest=run.completion.manifest_uri if run.completion else None,
    )


def build(
    executions: Sequence[ExecutionRecord], runs: Sequence[RunRecord], *, now: datetime, window: timedelta
) -> Dashboard:
    start = now - window
    recent = [e for e in executions if e.updated_at >= start]
    states = Counter(e.state.value for e in recent)
    failed = sorted((e for e in recent if e.state.value == "ERROR"), key=lambda e: e.updated_at, reverse=True)
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
        totals=totals,
        error_count=len(failed),
        states=dict(states),
        top_by_files=[_row(e) for e in sorted(recent, key=lambda e: e.counters.files_transferred, reverse=True)[:TOP]],
        top_by_bytes=[_row(e) for e in sorted(recent, key=lambda e: e.counters.bytes_transferred, reverse=True)[:TOP]],
        timeline=timeline,
        series=series,
        series_step_s=step,
        errors=errors,
        runs=[_run_row(r) for r in sorted(runs, key=lambda r: r.updated_at, reverse=True)],
    )
