import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seqferry_notifier.domain.dashboard import RANGES, SERIES_BUCKETS, build, file_failures, range_of
from seqferry_notifier.domain.executions import Observation, Source, fold
from seqferry_notifier.domain.manifest import build_manifest, entry_from_attributes, entry_from_head
from seqferry_notifier.domain.runs import RunStatus, new_run, observe_execution, record_listing
from seqferry_shared.events.models import Counters, ErrorInfo, FileProblem, RunSummary, TransferState
from seqferry_shared.sequencers import Instrument

T0 = datetime(2025, 11, 25, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def execution(name: str, files: list[int], state: TransferState, error: ErrorInfo | None = None):
    record = None
    for i, count in enumerate(files):
        o = Observation(
            execution_id=name,
            at=at(i * 10),
            source=Source.EXECUTOR,
            state=TransferState.TRANSFERRING,
            counters=Counters(files_transferred=count, bytes_transferred=count * 100),
            task="t",
            backend="local",
            started_at=at(0),
        )
        record = fold(record, o).record
    return fold(
        record, Observation(execution_id=name, at=at(len(files) * 10), source=Source.EXECUTOR, state=state, error=error)
    ).record


def test_dashboard_aggregates() -> None:
    # GIVEN two successful executions, one failed and one running
    a = execution("a", [1, 5, 10], TransferState.SUCCESS)
    b = execution("b", [20, 40], TransferState.SUCCESS)
    c = execution("c", [2], TransferState.ERROR, ErrorInfo(code="Boom", message="x" * 500))
    d = execution("d", [3], TransferState.TRANSFERRING)
    s = RunSummary(run_id="R", nas_path="/n/R", s3_prefix="n/R/", files_total=10, bytes_total=1000)
    run = new_run(s, "b", Instrument.MISEQ, at(0))
    run = observe_execution(run, execution_id="a", state=TransferState.SUCCESS, started_at=at(0), at=at(1), summary=s)
    run = record_listing(run, 5, 250, ["S3 has 5 object(s), the run folder 10 file(s)"], at(2))
    # WHEN aggregated
    dash = build([a, b, c, d], [run], now=at(100), window=timedelta(hours=1))
    # THEN totals, tops, errors and run progress are right
    assert dash.totals.files_transferred == 10 + 40 + 2 + 3
    assert dash.totals.bytes_transferred == 5500
    assert (dash.totals.executions, dash.totals.running, dash.totals.succeeded, dash.error_count) == (4, 1, 2, 1)
    assert [r.execution_id for r in dash.top_by_files][:2] == ["b", "a"]
    assert [r.execution_id for r in dash.top_by_bytes][:2] == ["b", "a"]
    assert dash.errors[0].code == "Boom"
    assert len(dash.errors[0].message) == 200
    assert [bar.execution_id for bar in dash.timeline] == ["a", "b", "c", "d"]
    assert dash.timeline[3].running
    assert dash.timeline[3].end == at(100)
    assert len(dash.series) == SERIES_BUCKETS
    assert sum(p.files for p in dash.series) == 55
    assert sum(p.bytes for p in dash.series) == 5500
    row = dash.runs[0]
    assert (row.status, row.files_total, row.s3_files, row.progress) == ("in_progress", 10, 5, 0.25)
    assert row.marker == "RTAComplete.txt"
    assert not row.marker_seen
    # AND old executions fall out of the window
    assert build([a], [], now=at(10_000), window=timedelta(hours=1)).totals.executions == 0


FAILED_MESSAGE = (
    "4 file(s) failed: /seq/R/Data/a.cbcl: file unreadable: Permission denied (EACCES); "
    "/seq/R/loop: symlink unresolvable: Too many levels of symbolic links (ELOOP); and 2 more"
)


def test_file_failures_are_read_from_the_executions_error() -> None:
    named, more = file_failures(FAILED_MESSAGE)
    assert named == [
        ("/seq/R/Data/a.cbcl", "file unreadable: Permission denied (EACCES)"),
        ("/seq/R/loop", "symlink unresolvable: Too many levels of symbolic links (ELOOP)"),
    ]
    assert more == 2
    assert file_failures("DataSync said no") == ([], 0)


def test_per_file_error_view_names_each_file_and_counts_the_rest() -> None:
    # GIVEN a local execution that names some failed files and a DataSync one that only counts them
    local = execution("local", [3], TransferState.ERROR, ErrorInfo(code="FilesFailed", message=FAILED_MESSAGE))
    local = local.model_copy(update={"counters": local.counters.model_copy(update={"files_failed": 4})})
    datasync = execution("ds", [3], TransferState.ERROR, ErrorInfo(code="VerificationError", message="x"))
    datasync = datasync.model_copy(
        update={"backend": "datasync", "counters": datasync.counters.model_copy(update={"files_failed": 5})}
    )
    dash = build([local, datasync], [], now=at(100), window=timedelta(hours=1))
    # THEN every named file is a row with its reason, and the unnamed ones a counted row pointing to the log
    rows = [(f.execution_id, f.path, f.reason) for f in dash.file_errors]
    assert ("local", "/seq/R/Data/a.cbcl", "file unreadable: Permission denied (EACCES)") in rows
    assert ("local", "/seq/R/loop", "symlink unresolvable: Too many levels of symbolic links (ELOOP)") in rows
    assert ("local", None, "2 more file(s) failed; see the execution's transfer log") in rows
    assert ("ds", None, "5 more file(s) failed; see the DataSync task's log") in rows
    assert dash.file_errors_total == 9


def test_ranges_up_to_four_weeks() -> None:
    assert range_of("28d") == timedelta(weeks=4)
    assert max(RANGES.values()) == timedelta(weeks=4)
    with pytest.raises(ValueError, match="1h, 6h, 24h, 7d, 14d, 28d"):
        range_of("5w")
    # an execution three weeks old is in the four-week view, not in the week view
    old = execution("old", [7], TransferState.SUCCESS)
    now = at(21 * 86400)
    assert build([old], [], now=now, window=range_of("28d"), range_name="28d").totals.files_transferred == 7
    assert build([old], [], now=now, window=range_of("7d"), range_name="7d").totals.executions == 0


def test_manifest_entries_and_document() -> None:
    attrs = {
        "ETag": "abc",
        "Checksum": {"ChecksumCRC32C": "yZRlqg==", "ChecksumType": "FULL_OBJECT"},
        "ObjectSize": 12,
        "VersionId": "v1",
    }
    head = {"ETag": '"def"', "ContentLength": 0, "VersionId": "v2"}
    e1 = entry_from_attributes("n/R/b.txt", attrs)
    e2 = entry_from_head("n/R/a.txt", head)
    assert (e1.checksum_algorithm, e1.checksum, e1.checksum_type, e1.version_id) == (
        "CRC32C",
        "yZRlqg==",
        "FULL_OBJECT",
        "v1",
    )
    assert (e2.checksum, e2.etag, e2.size) == (None, "def", 0)
    s = RunSummary(run_id="R", nas_path="/n/R", s3_prefix="n/R/", files_total=2, bytes_total=12)
    run = new_run(s, "bkt", Instrument.MISEQ, at(0))
    doc = json.loads(build_manifest(run, [e1, e2], marker="RTAComplete.txt", generated_at=at(5), executions=["x"]))
    assert doc["files"] == 2
    assert doc["bytes"] == 12
    assert doc["bucket"] == "bkt"
    assert [o["key"] for o in doc["objects"]] == ["n/R/a.txt", "n/R/b.txt"]
    # AND each object keeps its own checksum, version and ETag (as S3 reported them)
    assert [(o["checksum"], o["version_id"], o["etag"]) for o in doc["objects"]] == [
        (None, "v2", "def"),
        ("yZRlqg==", "v1", "abc"),
    ]
    assert doc["instrument"] == "miseq"


def test_a_standing_file_problem_keeps_the_run_failed_and_is_listed_once() -> None:
    # GIVEN a local pass that met a FIFO in a run folder (ERROR: new), then a pass that met it again (SUCCESS: the
    # problem stands but was reported), each reporting the run with one failed file
    fifo = FileProblem(path="/n/R/pipe", reason="FIFO (named pipe): not a regular file, not read")
    scan = RunSummary(run_id="R", nas_path="/n/R", s3_prefix="n/R/", files_total=3, files_failed=1, markers=["x"])

    def local_pass(name: str, start: float, state: TransferState, problems: tuple[FileProblem, ...]) -> Any:
        return fold(
            None,
            Observation(
                execution_id=name,
                at=at(start + 1),
                source=Source.EXECUTOR,
                state=state,
                task="sequencers",
                backend="local",
                started_at=at(start),
                counters=Counters(files_failed=len(problems)),
                problems=problems,
                run_ids=("R",),
            ),
        ).record

    first = local_pass("p1", 0, TransferState.ERROR, (fifo,))
    second = local_pass("p2", 10, TransferState.SUCCESS, (fifo,))
    run = new_run(scan, "b", Instrument.MISEQ, at(0))
    for record in (first, second):
        started = record.started_at or at(0)
        run = observe_execution(
            run, execution_id=record.execution_id, state=record.state, started_at=started, at=record.updated_at,
            summary=scan,
        )  # fmt: skip
    # THEN the run is failed (not in progress) though its latest execution succeeded, and the problem is listed and
    # counted once, as its newest report
    assert run.status == RunStatus.FAILED
    dash = build([first, second], [run], now=at(100), window=timedelta(hours=1))
    assert [(p.path, p.reason, p.execution_id) for p in dash.file_errors] == [(fifo.path, fifo.reason, "p2")]
    assert (dash.file_errors_total, dash.error_count) == (1, 1)
    # WHEN the lab removes the FIFO and the next pass reports nothing THEN the run is in progress again (the view
    # keeps the failure in the range's history)
    clean = RunSummary(run_id="R", nas_path="/n/R", s3_prefix="n/R/", files_total=2, markers=["x"])
    third = local_pass("p3", 20, TransferState.SUCCESS, ())
    run = observe_execution(run, execution_id="p3", state=third.state, started_at=at(20), at=at(21), summary=clean)
    assert run.status == RunStatus.IN_PROGRESS
