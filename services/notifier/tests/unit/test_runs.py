from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seqferry_notifier.domain.runinfo import Read, RunInfo
from seqferry_notifier.domain.runs import (
    EXECUTIONS_LIMIT,
    Completion,
    Incompletion,
    ObjectInfo,
    RunStatus,
    candidate_blockers,
    completion_marker,
    decide,
    identify_instrument,
    is_stalled,
    listing_due,
    manifest_key,
    mark_completed,
    mark_failed_execution,
    mark_incomplete,
    mark_stalled,
    new_run,
    observe_execution,
    record_listing,
    summary_problem,
)
from seqferry_notifier.domain.runstatus import RunStatusError, parse_run_completion
from seqferry_shared.events.models import RunSummary, TransferState
from seqferry_shared.sequencers import Instrument, parse_sequencer_paths

T0 = datetime(2025, 11, 25, 9, 0, tzinfo=UTC)
RUN = "251125_M00123_0001_000000000-ABCDE"
PREFIX = f"sequencers/incoming/miseq/{RUN}/"
INFO = RunInfo(run_id=RUN, reads=(Read(1, 3, False), Read(2, 2, True)), lane_count=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run_objects(*, cycles: int = 5, marker: bool = True, size: int = 10) -> list[ObjectInfo]:
    keys = ["RunInfo.xml", "RunParameters.xml"]
    keys += [f"Data/Intensities/BaseCalls/L001/C{c}.1/s_1_1101.bcl" for c in range(1, cycles + 1)]
    if marker:
        keys.append("RTAComplete.txt")
    return [ObjectInfo(key=PREFIX + k, size=size) for k in keys]


def summary(objects: list[ObjectInfo], *, markers: tuple[str, ...] = ("RTAComplete.txt",), **kw: int) -> RunSummary:
    return RunSummary(
        run_id=RUN,
        nas_path=f"/sequencers/incoming/miseq/{RUN}",
        s3_prefix=PREFIX,
        files_total=kw.pop("files_total", len(objects)),
        bytes_total=kw.pop("bytes_total", sum(o.size for o in objects)),
        files_transferred=kw.pop("files_transferred", len(objects)),
        markers=list(markers),
        **kw,
    )


def tracked(state: TransferState, s: RunSummary, *, execution: str = "exec-1", started: float = 0):
    run = new_run(s, "bucket", Instrument.MISEQ, at(started))
    return observe_execution(
        run, execution_id=execution, state=state, started_at=at(started), at=at(started + 1), summary=s
    )


def test_complete_run_is_delivered() -> None:
    objects = run_objects()
    run = tracked(TransferState.SUCCESS, summary(objects))
    verdict = decide(run, objects, INFO)
    assert verdict.complete, verdict.blockers
    assert (verdict.files, verdict.bytes, verdict.marker) == (len(objects), 10 * len(objects), "RTAComplete.txt")


@pytest.mark.parametrize(
    ("state", "summary_kw", "expected"),
    [
        (TransferState.VERIFYING, {}, "latest execution exec-1 is VERIFYING"),
        (TransferState.SUCCESS, {"files_pending": 2}, "2 file(s) still being written"),
        (TransferState.SUCCESS, {"files_failed": 1}, "1 file(s) failed to transfer"),
        (TransferState.SUCCESS, {"markers": ()}, "completion marker RTAComplete.txt not seen yet"),
        (TransferState.ERROR, {}, "latest execution exec-1 is ERROR"),
    ],
)
def test_execution_side_blocks(state: TransferState, summary_kw: dict, expected: str) -> None:
    objects = run_objects()
    markers = summary_kw.pop("markers", ("RTAComplete.txt",))
    run = tracked(state, summary(objects, markers=markers, **summary_kw))
    verdict = decide(run, objects, INFO)
    assert not verdict.complete
    assert expected in verdict.blockers


def test_a_missing_file_blocks() -> None:
    # GIVEN the run folder had 8 files but one is not in S3
    objects = run_objects()
    run = tracked(TransferState.SUCCESS, summary(objects))
    verdict = decide(run, objects[:3] + objects[4:], INFO)
    assert not verdict.complete
    assert f"S3 has {len(objects) - 1} object(s), the run folder {len(objects)} file(s)" in verdict.blockers


def test_a_file_of_different_size_blocks() -> None:
    objects = run_objects()
    run = tracked(TransferState.SUCCESS, summary(objects))
    changed = [*objects[:-2], ObjectInfo(key=objects[-2].key, size=9), objects[-1]]
    verdict = decide(run, changed, INFO)
    assert not verdict.complete
    assert any(b.startswith("S3 holds") for b in verdict.blockers)


def test_marker_not_in_s3_blocks_even_if_counts_match() -> None:
    objects = [*run_objects(marker=False), ObjectInfo(key=PREFIX + "extra.txt", size=10)]
    run = tracked(TransferState.SUCCESS, summary(run_objects()))
    verdict = decide(run, objects, INFO)
    assert verdict.blockers == ("RTAComplete.txt is not in S3 yet",)


def test_cycles_inconsistent_with_runinfo_block() -> None:
    objects = run_objects(cycles=4)
    run = tracked(TransferState.SUCCESS, summary(objects))
    verdict = decide(run, objects, INFO)
    assert verdict.blockers == ("lane 1: 4 of 5 cycles present, missing cycle(s) 5",)
    assert decide(run, objects, None).blockers == ("RunInfo.xml is not in S3 yet",)
    assert decide(run, objects, None, run_info_error="RunInfo.xml: bad").blockers == ("RunInfo.xml: bad",)
    assert decide(run, objects, None, check_cycles=False).complete


def test_a_newer_unfinished_scan_supersedes_an_older_complete_one() -> None:
    # GIVEN a complete scan by exec-1 and a later execution still transferring new files
    objects = run_objects()
    run = tracked(TransferState.SUCCESS, summary(objects))
    run = observe_execution(
        run,
        execution_id="exec-2",
        state=TransferState.TRANSFERRING,
        started_at=at(100),
        at=at(101),
        summary=summary(objects, files_total=len(objects) + 3),
    )
    verdict = decide(run, objects, INFO)
    assert not verdict.complete
    assert "latest execution exec-2 is TRANSFERRING" in verdict.blockers


def test_a_delivered_run_is_never_delivered_again() -> None:
    objects = run_objects()
    run = tracked(TransferState.SUCCESS, summary(objects))
    run = mark_completed(
        run,
        Completion(at=at(5), files=8, bytes=80, marker="RTAComplete.txt", manifest_uri="s3://b/m.json", event_id="e"),
    )
    assert run.status == RunStatus.COMPLETED
    assert not decide(run, objects, INFO).complete


def test_progress_and_stall() -> None:
    # GIVEN a run first seen at t=0
    objects = run_objects()
    run = tracked(TransferState.TRANSFERRING, summary(objects, files_transferred=2), started=0)
    deadline = timedelta(hours=1)
    assert run.last_progress_at == at(1)
    # WHEN the same scan is seen again by a later execution that transfers nothing
    same = observe_execution(
        run,
        execution_id="exec-2",
        state=TransferState.SUCCESS,
        started_at=at(600),
        at=at(601),
        summary=summary(objects, files_transferred=0),
    )
    # THEN that is no progress, and the run stalls after the deadline
    assert same.last_progress_at == at(1)
    assert not is_stalled(same, at(3000), deadline)
    assert is_stalled(same, at(3602), deadline)
    stalled = mark_stalled(same, at(3602))
    assert stalled.status == RunStatus.STALLED
    assert not is_stalled(stalled, at(9000), deadline)  # announced once per episode
    # WHEN objects appear in S3 again, the stall ends
    moving = record_listing(stalled, 9, 90, [], at(9100))
    assert moving.status == RunStatus.IN_PROGRESS
    assert moving.last_progress_at == at(9100)


def test_listing_due() -> None:
    run = tracked(TransferState.TRANSFERRING, summary(run_objects()))
    assert listing_due(run, at(2), timedelta(seconds=10))
    run = record_listing(run, 1, 10, [], at(2))
    assert not listing_due(run, at(5), timedelta(seconds=10))
    assert listing_due(run, at(12), timedelta(seconds=10))
    assert run.progress == pytest.approx(10 / 80)


def test_instrument_from_path_then_folder_name() -> None:
    sequencers = parse_sequencer_paths("/seq/a=novaseqx,/seq/miseq,/seq/m=miniseq,/seq/h=hiseq4000")
    assert (
        identify_instrument("/seq/a/20251125_LH00123_0001_A22ABCDEF3", "20251125_LH00123_0001_A22ABCDEF3", sequencers)
        == Instrument.NOVASEQX
    )
    assert identify_instrument(f"/seq/miseq/{RUN}", RUN, sequencers) == Instrument.MISEQ
    # MiniSeq and HiSeq paths get their own instrument (and so their own marker), whatever the run is called
    miniseq = identify_instrument("/seq/m/190715_MN00302_0284_A000H2VKFF", "190715_MN00302_0284_A000H2VKFF", sequencers)
    assert miniseq == Instrument.MINISEQ
    assert completion_marker(miniseq) == "RunCompletionStatus.xml"
    hiseq = identify_instrument("/seq/h/170101_K00150_0123_BHJV2FBBXX", "170101_K00150_0123_BHJV2FBBXX", sequencers)
    assert completion_marker(hiseq) == "SequencingComplete.txt"
    # a run under an ad-hoc root (no sequencer path) is known by its folder name, when that is unambiguous
    assert (
        identify_instrument("/extra/251125_A01934_0157_BHJF77DRX5", "251125_A01934_0157_BHJF77DRX5", sequencers)
        == Instrument.NOVASEQ6000
    )
    assert identify_instrument("/extra/whatever", "whatever", sequencers) is None


def test_unknown_instrument_waits_for_copycomplete() -> None:
    objects = run_objects()
    s = summary(objects)
    run = new_run(s, "bucket", None, at(0))
    run = observe_execution(run, execution_id="e", state=TransferState.SUCCESS, started_at=at(0), at=at(1), summary=s)
    assert "completion marker CopyComplete.txt not seen yet" in decide(run, objects, INFO).blockers


def test_manifest_sits_next_to_the_run_folder() -> None:
    run = tracked(TransferState.SUCCESS, summary(run_objects()))
    assert (
        manifest_key(run, "{run_id}.seqferry-manifest.json")
        == f"sequencers/incoming/miseq/{RUN}.seqferry-manifest.json"
    )


# -- runs the instrument ended early ----------------------------------------------------------------------------

STOPPED_NEXTSEQ = b"""<?xml version="1.0"?>
<RunCompletionStatus>
    <Version>1</Version>
    <CompletionStatus>UserEndedEarly</CompletionStatus>
    <RunId>251125_NB551168_0163_AHF727BGX7</RunId>
    <PlannedRead1Cycles>3</PlannedRead1Cycles>
    <PlannedRead2Cycles>0</PlannedRead2Cycles>
    <PlannedIndex1ReadCycles>2</PlannedIndex1ReadCycles>
    <PlannedIndex2ReadCycles>0</PlannedIndex2ReadCycles>
    <CompletedRead1Cycles>3</CompletedRead1Cycles>
    <CompletedRead2Cycles>0</CompletedRead2Cycles>
    <CompletedIndex1ReadCycles>0</CompletedIndex1ReadCycles>
    <CompletedIndex2ReadCycles>0</CompletedIndex2ReadCycles>
    <ErrorDescription>Run stopped by the user</ErrorDescription>
</RunCompletionStatus>"""


def test_run_completion_status_of_both_shapes() -> None:
    reference = Path(__file__).parents[4] / "tests/reference/illumina/nextseq500_160404_NS500318_0141_AHW37NBGXX"
    done = parse_run_completion((reference / "RunCompletionStatus.xml").read_bytes())
    assert (done.status, done.completed, done.cycles_planned, done.cycles_completed, done.error) == (
        "CompletedAsPlanned",
        True,
        87,
        87,
        "",
    )
    stopped = parse_run_completion(STOPPED_NEXTSEQ)
    assert (stopped.status, stopped.completed, stopped.cycles_planned, stopped.cycles_completed) == (
        "UserEndedEarly",
        False,
        5,
        3,
    )
    rta3 = parse_run_completion(
        b"<RunCompletionStatus><RunStatus>RunStopped</RunStatus><CompletionStatus>ExceptionEndedEarly"
        b"</CompletionStatus><NumCyclesPlanned>318</NumCyclesPlanned><NumCyclesCompleted>40</NumCyclesCompleted>"
        b"<ErrorDescription>Fluidics error</ErrorDescription></RunCompletionStatus>"
    )
    assert (rta3.status, rta3.cycles_planned, rta3.cycles_completed, rta3.error) == (
        "ExceptionEndedEarly",
        318,
        40,
        "Fluidics error",
    )
    for bad in (b"<x/>", b"not xml", b"<RunCompletionStatus><RunId>x</RunId></RunCompletionStatus>"):
        with pytest.raises(RunStatusError):
            parse_run_completion(bad)


def test_a_run_the_instrument_says_it_stopped_is_settled_incomplete_at_once() -> None:
    # GIVEN a run stopped after 3 of 5 cycles: marker written, everything on the NAS in S3
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    stopped = parse_run_completion(STOPPED_NEXTSEQ)
    # THEN it is not complete, and it is incomplete without waiting for a grace period
    verdict = decide(run, objects, INFO, completion=stopped, quiet=False)
    assert not verdict.complete
    assert verdict.incomplete is not None
    assert (verdict.incomplete.status, verdict.incomplete.cycles_planned, verdict.incomplete.cycles_completed) == (
        "UserEndedEarly",
        5,
        3,
    )
    assert verdict.incomplete.detail == "Run stopped by the user"


def test_missing_cycles_without_a_status_file_are_incomplete_only_once_nothing_moves() -> None:
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    # WHILE the run may still be catching up: blocked, not settled
    waiting = decide(run, objects, INFO, quiet=False)
    assert waiting.incomplete is None
    assert any("missing cycle(s) 4, 5" in b for b in waiting.blockers)
    # ONCE nothing changed for the grace period: incomplete
    settled = decide(run, objects, INFO, quiet=True)
    assert settled.incomplete is not None
    assert (settled.incomplete.status, settled.incomplete.cycles_completed) == ("Incomplete", 3)


def test_nothing_is_settled_incomplete_while_files_are_still_missing_in_s3() -> None:
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    partial = objects[:-2] + objects[-1:]
    verdict = decide(run, partial, INFO, completion=parse_run_completion(STOPPED_NEXTSEQ), quiet=True)
    assert verdict.incomplete is None
    assert not verdict.complete


def test_a_completed_as_planned_status_never_makes_a_run_incomplete() -> None:
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    done = parse_run_completion(STOPPED_NEXTSEQ.replace(b"UserEndedEarly", b"CompletedAsPlanned"))
    assert decide(run, objects, INFO, completion=done, quiet=True).incomplete is None


def test_an_incomplete_run_is_settled_and_never_stalls() -> None:
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    outcome = decide(run, objects, INFO, quiet=True).incomplete
    assert outcome is not None
    done = mark_incomplete(
        run, Incompletion(at=at(10), outcome=outcome, files=5, bytes=50, manifest_uri="s3://b/m.json", event_id="e")
    )
    assert done.status is RunStatus.INCOMPLETE
    assert candidate_blockers(done) == ["already reported incomplete"]
    assert not is_stalled(done, at(10**6), timedelta(hours=6))


SEQUENCERS = parse_sequencer_paths("/sequencers/incoming/miseq=miseq,/sequencers/incoming/novaseq=novaseq6000")
REAL = "/sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE"


@pytest.mark.parametrize(
    ("run_id", "nas_path", "s3_prefix", "problem"),
    [
        ("251125_M00123_0001_000000000-ABCDE", REAL, REAL[1:] + "/", None),
        ("251125_M00123_0001_000000000-ABCDE", REAL, "", "s3_prefix ''"),
        ("251125_M00123_0001_000000000-ABCDE", REAL, "hr/", "s3_prefix 'hr/'"),
        ("251125_M00123_0001_000000000-ABCDE", REAL, "sequencers/incoming/", "is not the run folder's prefix"),
        ("x", "/hr/private", "hr/private/", "not under a configured sequencer path"),
        ("x", "/sequencers/incoming/miseq-old/x", "sequencers/incoming/miseq-old/x/", "not under a configured"),
        ("Data", REAL + "/Data", REAL[1:] + "/Data/", "is not a run folder"),
        ("other", REAL, REAL[1:] + "/", "is not the folder's name"),
        ("miseq", "/sequencers/incoming/miseq", "sequencers/incoming/miseq/", "not under a configured"),
    ],
)
def test_only_a_run_folder_under_a_sequencer_path_is_a_run(
    run_id: str, nas_path: str, s3_prefix: str, problem: str | None
) -> None:
    # GIVEN a run summary from an event (input, whoever sent it) WHEN checked against the configured paths
    found = summary_problem(RunSummary(run_id=run_id, nas_path=nas_path, s3_prefix=s3_prefix), SEQUENCERS)
    # THEN only the real run folder with its own prefix passes; anything else is named with the reason
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_a_run_is_failed_while_its_latest_execution_ended_in_error_or_left_files_failed() -> None:
    objects = run_objects()
    # GIVEN the latest execution ended in ERROR THEN the run is failed
    assert tracked(TransferState.ERROR, summary(objects)).status is RunStatus.FAILED
    # GIVEN it ended SUCCESS but reported files that failed THEN the run is failed too
    assert tracked(TransferState.SUCCESS, summary(objects, files_failed=1)).status is RunStatus.FAILED
    # GIVEN a clean SUCCESS THEN the run is still in progress (until delivered)
    assert tracked(TransferState.SUCCESS, summary(objects)).status is RunStatus.IN_PROGRESS


def test_execution_state_never_goes_back_and_the_newest_scan_wins() -> None:
    objects = run_objects()
    older, newer = summary(objects, files_transferred=2), summary(objects, files_transferred=5)
    run = tracked(TransferState.TRANSFERRING, older)
    # WHEN a non-terminal execution moves on THEN its state follows
    run = observe_execution(run, execution_id="exec-1", state=TransferState.VERIFYING, started_at=at(0), at=at(5))
    assert run.executions["exec-1"].state is TransferState.VERIFYING
    # WHEN a newer scan arrives THEN it replaces the older one; an event without a scan keeps it
    run = observe_execution(
        run, execution_id="exec-1", state=TransferState.SUCCESS, started_at=at(0), at=at(10), summary=newer
    )
    run = observe_execution(run, execution_id="exec-1", state=TransferState.SUCCESS, started_at=at(0), at=at(11))
    assert run.executions["exec-1"].summary == newer
    # WHEN events arrive late and out of order (an older state, an older scan) THEN nothing goes back
    run = observe_execution(
        run, execution_id="exec-1", state=TransferState.TRANSFERRING, started_at=at(0), at=at(3), summary=older
    )
    assert run.executions["exec-1"].state is TransferState.SUCCESS
    assert run.executions["exec-1"].summary == newer
    assert run.executions["exec-1"].observed_at == at(11)
    # WHEN two scans carry the same instant THEN the one received last wins (progress only grows within a second)
    latest = summary(objects, files_transferred=6)
    run = observe_execution(
        run, execution_id="exec-1", state=TransferState.SUCCESS, started_at=at(0), at=at(11), summary=latest
    )
    assert run.executions["exec-1"].summary == latest


def test_a_scan_reported_late_for_an_execution_seen_without_one_is_kept() -> None:
    objects = run_objects()
    # GIVEN an execution first seen through a state change carrying no scan
    run = new_run(summary(objects), "bucket", Instrument.MISEQ, at(0))
    run = observe_execution(run, execution_id="exec-1", state=TransferState.VERIFYING, started_at=at(0), at=at(9))
    # WHEN its scan arrives afterwards with an earlier time stamp THEN the run still gets that scan
    scan = summary(objects)
    run = observe_execution(
        run, execution_id="exec-1", state=TransferState.TRANSFERRING, started_at=at(0), at=at(4), summary=scan
    )
    assert run.executions["exec-1"].summary == scan
    assert run.scan == scan


def test_a_run_keeps_its_newest_executions_and_correlation_ids_up_to_the_limit() -> None:
    objects = run_objects()
    run = new_run(summary(objects), "bucket", Instrument.MISEQ, at(0))
    # WHEN the run is touched by one execution more than the limit, each with its own correlation id
    for n in range(EXECUTIONS_LIMIT + 1):
        run = observe_execution(
            run,
            execution_id=f"exec-{n:03}",
            state=TransferState.SUCCESS,
            started_at=at(n),
            at=at(n + 1),
            summary=summary(objects),
            correlation_id=f"corr-{n:03}",
        )
        if n == EXECUTIONS_LIMIT - 1:
            # THEN up to the limit nothing is dropped
            assert len(run.executions) == EXECUTIONS_LIMIT
    # THEN the oldest execution is dropped, the newest kept, and the correlation ids stop at the limit
    assert sorted(run.executions) == [f"exec-{n:03}" for n in range(1, EXECUTIONS_LIMIT + 1)]
    assert run.correlation_ids == [f"corr-{n:03}" for n in range(EXECUTIONS_LIMIT)]


def test_correlation_ids_are_listed_once_and_only_when_given() -> None:
    objects = run_objects()
    run = new_run(summary(objects), "bucket", Instrument.MISEQ, at(0))
    run = observe_execution(run, execution_id="exec-1", state=TransferState.LAUNCHING, started_at=at(0), at=at(1))
    assert run.correlation_ids == []
    for t in (2, 3):
        run = observe_execution(
            run, execution_id="exec-1", state=TransferState.SUCCESS, started_at=at(0), at=at(t), correlation_id="c1"
        )
    assert run.correlation_ids == ["c1"]


def test_updates_return_a_new_record_and_leave_the_given_one_as_it_was() -> None:
    # GIVEN a stored run record (the store retries an update from it when a concurrent writer won)
    objects = run_objects()
    run = tracked(TransferState.TRANSFERRING, summary(objects, files_transferred=2))
    stored = run.model_dump()
    # WHEN an execution and a failed execution are recorded
    observed = observe_execution(
        run, execution_id="exec-2", state=TransferState.SUCCESS, started_at=at(5), at=at(6), summary=summary(objects)
    )
    failed = mark_failed_execution(run, "exec-1", at(7))
    # THEN the changes are in the new records and the given record is untouched
    assert "exec-2" in observed.executions
    assert failed.failed_executions == ["exec-1"]
    assert run.model_dump() == stored


def test_a_failed_execution_is_recorded_once() -> None:
    run = tracked(TransferState.ERROR, summary(run_objects()))
    run = mark_failed_execution(run, "exec-1", at(5))
    run = mark_failed_execution(run, "exec-1", at(6))
    assert run.failed_executions == ["exec-1"]
    assert run.updated_at == at(6)


def test_a_delivered_run_is_never_reported_incomplete() -> None:
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    outcome = decide(run, objects, INFO, quiet=True).incomplete
    assert outcome is not None
    delivered = mark_completed(
        run,
        Completion(at=at(5), files=7, bytes=70, marker="RTAComplete.txt", manifest_uri="s3://b/m.json", event_id="e"),
    )
    late = mark_incomplete(
        delivered,
        Incompletion(at=at(10), outcome=outcome, files=5, bytes=50, manifest_uri="s3://b/m.json", event_id="f"),
    )
    assert late.status is RunStatus.COMPLETED
    assert late.incomplete is None


def test_a_run_stalls_only_once_the_deadline_has_fully_passed() -> None:
    run = tracked(TransferState.TRANSFERRING, summary(run_objects()))
    deadline = timedelta(hours=1)
    assert not is_stalled(run, run.last_progress_at + deadline, deadline)
    assert is_stalled(run, run.last_progress_at + deadline + timedelta(microseconds=1), deadline)


@pytest.mark.parametrize(("files_total", "empty"), [(0, True), (1, False)])
def test_only_a_scan_of_no_files_is_an_empty_run_folder(files_total: int, empty: bool) -> None:
    objects = run_objects()
    run = tracked(TransferState.SUCCESS, summary(objects, files_total=files_total))
    assert ("the scan saw an empty run folder" in candidate_blockers(run)) is empty
    assert (candidate_blockers(run) == []) is not empty


def test_cycles_of_an_early_ended_run_come_from_runinfo_and_s3_else_from_the_status_file() -> None:
    objects = run_objects(cycles=4)
    run = tracked(TransferState.SUCCESS, summary(objects))
    # GIVEN a status file whose figures differ from what RunInfo.xml plans and S3 holds
    stopped = parse_run_completion(STOPPED_NEXTSEQ)
    assert (stopped.cycles_planned, stopped.cycles_completed) == (5, 3)
    info = RunInfo(run_id=RUN, reads=(Read(1, 4, False), Read(2, 2, True)), lane_count=1)
    # THEN with RunInfo.xml in S3, planned cycles are RunInfo's and completed ones those found in S3
    outcome = decide(run, objects, info, completion=stopped).incomplete
    assert outcome is not None
    assert (outcome.cycles_planned, outcome.cycles_completed) == (6, 4)
    # THEN without RunInfo.xml, the status file's figures are used
    outcome = decide(run, objects, None, completion=stopped).incomplete
    assert outcome is not None
    assert (outcome.cycles_planned, outcome.cycles_completed) == (5, 3)
    # THEN without a status file, a quiet run's planned cycles are RunInfo's
    objects = run_objects(cycles=3)
    run = tracked(TransferState.SUCCESS, summary(objects))
    quiet = decide(run, objects, INFO, quiet=True).incomplete
    assert quiet is not None
    assert (quiet.cycles_planned, quiet.cycles_completed) == (5, 3)


def test_a_hostile_summary_is_quoted_cut_short_in_its_problem() -> None:
    long = "x" * 10_000
    cases = [
        RunSummary(run_id="r", nas_path="/hr/" + long, s3_prefix="p/"),
        RunSummary(run_id="r", nas_path=REAL + "/" + long, s3_prefix="p/"),
        RunSummary(run_id=long, nas_path=REAL, s3_prefix=REAL[1:] + "/"),
        RunSummary(run_id=RUN, nas_path=REAL, s3_prefix=long),
    ]
    for case in cases:
        problem = summary_problem(case, SEQUENCERS)
        assert problem is not None
        assert 0 < len(problem) < 500, problem[:100]
