"""Run folders of a DataSync execution from its include patterns and the bucket (pure: no S3 here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from seqferry_notifier.domain.discovery import Scope, patterns_of, run_folder, scopes, summary_from_objects
from seqferry_notifier.domain.executions import ExecutionRecord, note_discovered
from seqferry_notifier.domain.runs import ObjectInfo
from seqferry_shared.events.models import TransferState
from seqferry_shared.sequencers import Instrument, SequencerPath, parse_sequencer_paths

SEQUENCERS = parse_sequencer_paths("/sequencers/incoming/miseq=miseq,/sequencers/incoming/novaseq=novaseq6000")
MISEQ, NOVASEQ = SEQUENCERS
END = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)


def test_window_patterns_list_their_name_prefix_under_each_instrument_folder() -> None:
    includes = ["/sequencers/incoming/miseq/251125*", "/sequencers/incoming/novaseq/2511*", "/adhoc"]
    found = scopes(includes, SEQUENCERS)
    assert found == [Scope(MISEQ, name_prefix="251125"), Scope(NOVASEQ, name_prefix="2511")]
    assert found[0].list_prefix == "sequencers/incoming/miseq/251125"


def test_describe_gives_one_joined_value_and_it_is_split() -> None:
    joined = "/sequencers/incoming/miseq/251125*|/sequencers/incoming/miseq/251124*|/adhoc"
    assert patterns_of([joined]) == [
        "/sequencers/incoming/miseq/251125*",
        "/sequencers/incoming/miseq/251124*",
        "/adhoc",
    ]
    assert [s.name_prefix for s in scopes([joined], SEQUENCERS)] == ["251125", "251124"]


def test_request_paths_name_their_run_folder_directly() -> None:
    run = "251125_M00123_0001_000000000-ABCDE"
    includes = [
        f"/sequencers/incoming/miseq/{run}",
        f"/sequencers/incoming/miseq/{run}/Data/*",
        f"/sequencers/incoming/miseq/{run}/RunInfo.xml",
    ]
    assert scopes(includes, SEQUENCERS) == [Scope(MISEQ, run_id=run)]


def test_the_instrument_folder_itself_lists_every_run_folder() -> None:
    for pattern in ("/sequencers/incoming/miseq", "/sequencers/incoming/miseq/*", "/sequencers/incoming/miseq/"):
        (scope,) = scopes([pattern], SEQUENCERS)
        assert scope == Scope(MISEQ)
        assert scope.list_prefix == "sequencers/incoming/miseq/"


def test_paths_outside_the_sequencer_folders_cover_no_run() -> None:
    assert scopes(["/adhoc", "/adhoc/rerun.txt", "/sequencers/incoming/miseqold/251125*"], SEQUENCERS) == []


def test_common_prefixes_become_run_folder_names() -> None:
    scope = Scope(MISEQ, name_prefix="2511")
    assert run_folder(scope, "sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE/") == (
        "251125_M00123_0001_000000000-ABCDE"
    )
    assert run_folder(scope, "sequencers/incoming/novaseq/251125_A/") is None
    assert run_folder(scope, "sequencers/incoming/miseq/") is None


def objects(prefix: str, *names: str, at: datetime = END - timedelta(minutes=5)) -> list[ObjectInfo]:
    return [ObjectInfo(key=f"{prefix}{name}", size=10, last_modified=at) for name in names]


def test_summary_counts_what_s3_held_when_the_execution_ended() -> None:
    prefix = "sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE/"
    listing = [
        *objects(prefix, "RunInfo.xml", "Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl", "RTAComplete.txt"),
        # written by a later execution, after this one ended: not part of this execution's view
        *objects(prefix, "Data/Intensities/BaseCalls/L001/C2.1/s_1_1101.bcl", at=END + timedelta(seconds=1)),
        # another folder that merely shares the prefix's parent
        ObjectInfo(key="sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE.seqferry-manifest.json", size=1),
    ]
    summary = summary_from_objects(MISEQ, "251125_M00123_0001_000000000-ABCDE", listing, until=END)
    assert summary.nas_path == "/sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE"
    assert summary.s3_prefix == prefix
    assert (summary.files_total, summary.bytes_total) == (3, 30)
    assert summary.markers == ["RTAComplete.txt"]
    # nothing is claimed about what this execution copied: repeated lookups must not look like progress
    assert (summary.files_transferred, summary.files_pending, summary.files_failed) == (0, 0, 0)


def test_markers_follow_the_instrument_of_the_folder() -> None:
    prefix = "sequencers/incoming/miseq/r/"
    # a MiSeq folder's marker is RTAComplete.txt; a CopyComplete.txt there is just a file
    summary = summary_from_objects(MISEQ, "r", objects(prefix, "CopyComplete.txt"), until=END)
    assert summary.markers == []
    # a NovaSeq X folder's markers are the registry's (RTAComplete.txt, RunCompletionStatus.xml, CopyComplete.txt),
    # and only at the top of the run folder
    novaseqx = SequencerPath(path="/sequencers/incoming/x", instrument=Instrument.NOVASEQX)
    listing = objects("sequencers/incoming/x/r/", "CopyComplete.txt", "RunCompletionStatus.xml", "x/RTAComplete.txt")
    summary = summary_from_objects(novaseqx, "r", listing, until=END)
    assert summary.markers == ["CopyComplete.txt", "RunCompletionStatus.xml"]
    assert NOVASEQ.instrument is Instrument.NOVASEQ6000


def record(**fields: object) -> ExecutionRecord:
    values: dict[str, object] = {
        "execution_id": "exec-0123456789abcdef0",
        "backend": "datasync",
        "state": TransferState.SUCCESS,
        "includes": ["/sequencers/incoming/miseq/251125*"],
        "first_seen_at": END,
        "updated_at": END,
    }
    values.update(fields)
    return ExecutionRecord.model_validate(values)


def test_only_successful_datasync_executions_with_patterns_are_looked_up_once() -> None:
    assert record().needs_run_discovery
    assert not record(state=TransferState.TRANSFERRING).needs_run_discovery
    assert not record(state=TransferState.ERROR).needs_run_discovery
    assert not record(backend="local").needs_run_discovery
    assert not record(includes=[]).needs_run_discovery
    done = note_discovered(record(), ["a", "b"], END)
    assert not done.needs_run_discovery
    assert done.run_ids == ["a", "b"]


def test_patterns_missing_from_the_event_are_asked_of_datasync_once() -> None:
    arn = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0123456789abcdef1"
    cut = record(includes=[], arn=arn)
    assert cut.awaits_includes
    assert not cut.needs_run_discovery
    described = cut.model_copy(update={"reconcile": cut.reconcile.model_copy(update={"describes": 1})})
    assert not described.awaits_includes
    assert not record(includes=[]).awaits_includes  # no ARN: nothing to ask
