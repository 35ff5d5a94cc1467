"""The local engine's decisions: stability, change detection, marker ordering, per-run summaries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from seqferry_executor.backends.local.config import MIB, LocalBackendConfig
from seqferry_executor.backends.local.index import IndexedFile
from seqferry_executor.backends.local.plan import (
    Action,
    RunBook,
    StabilityTracker,
    classify,
    is_marker,
    is_stable,
    make_plan,
)
from seqferry_executor.backends.local.scan import FileEntry, ScanFailure
from seqferry_shared.sequencers import parse_sequencer_paths

S = 1_000_000_000
NOW = 1_800_000_000 * S
QUIET = 2 * S
SEQUENCERS = parse_sequencer_paths("/seq/miseq=miseq,/seq/nova=novaseq6000")
RUN = "/seq/miseq/241101_M00001_0001_000000000-AAAAA"


def entry(
    nas_path: str, *, size: int = 10, mtime: int = NOW - 60 * S, ctime: int | None = None, ino: int = 1
) -> FileEntry:
    return FileEntry(nas_path, nas_path[1:], nas_path[1:], size, mtime, mtime if ctime is None else ctime, ino, 1)


def test_stable_only_after_the_quiet_period_of_both_mtime_and_ctime() -> None:
    tracker = StabilityTracker()
    assert is_stable(entry("/f", mtime=NOW - 3 * S), NOW, QUIET, tracker)
    assert not is_stable(entry("/f", mtime=NOW - 1 * S), NOW, QUIET, tracker)
    # a copy tool that set an old mtime while still writing: the ctime is fresh
    assert not is_stable(entry("/f", mtime=NOW - 3600 * S, ctime=NOW - S // 2), NOW, QUIET, tracker)


def test_timestamps_from_the_future_are_watched_instead_of_trusted() -> None:
    # GIVEN a NAS clock one hour ahead
    tracker = StabilityTracker()
    ahead = entry("/f", mtime=NOW + 3600 * S)
    # WHEN first seen THEN not stable; unchanged for the quiet period THEN stable
    assert not is_stable(ahead, NOW, QUIET, tracker)
    assert not is_stable(ahead, NOW + S, QUIET, tracker)
    assert is_stable(ahead, NOW + 2 * S, QUIET, tracker)
    # a change restarts the watch
    grown = entry("/f", mtime=NOW + 3600 * S + 1, size=11)
    assert not is_stable(grown, NOW + 3 * S, QUIET, tracker)


@pytest.mark.parametrize(
    ("known", "stable", "expected"),
    [
        (None, True, Action.SHIP),
        (None, False, Action.PENDING),
        (IndexedFile(10, NOW - 60 * S, 1), True, Action.UNCHANGED),
        (IndexedFile(10, NOW - 60 * S, 1), False, Action.UNCHANGED),
        (IndexedFile(10, NOW - 60 * S, None), True, Action.UNCHANGED),
        (IndexedFile(10, NOW - 61 * S, 1), True, Action.SHIP),
        (IndexedFile(9, NOW - 60 * S, 1), True, Action.SHIP),
        (IndexedFile(10, NOW - 60 * S, 2), True, Action.SHIP),
        (IndexedFile(10, None), True, Action.CONFIRM),
        (IndexedFile(10, None), False, Action.PENDING),
        (IndexedFile(11, None), True, Action.SHIP),
    ],
)
def test_classify(known: IndexedFile | None, stable: bool, expected: Action) -> None:
    assert classify(entry("/f"), known, stable=stable) is expected


def test_markers_recognised_per_instrument_at_the_top_of_a_run_only() -> None:
    assert is_marker(f"{RUN}/RTAComplete.txt", SEQUENCERS)
    assert not is_marker(f"{RUN}/CopyComplete.txt", SEQUENCERS)  # not MiSeq's marker
    assert not is_marker(f"{RUN}/Data/RTAComplete.txt", SEQUENCERS)
    assert is_marker("/seq/nova/241101_A00001_0001_AHXXXXXXXX/CopyComplete.txt", SEQUENCERS)
    assert not is_marker("/adhoc/RTAComplete.txt", SEQUENCERS)


def test_each_instrument_holds_back_its_own_last_marker() -> None:
    sequencers = parse_sequencer_paths("/seq/m=miniseq,/seq/h=hiseq4000,/seq/n=nextseq2000")
    miniseq, hiseq, nextseq = (
        "/seq/m/251125_MN00302_0284_A000H2VKFF",
        "/seq/h/251125_K00150_0123_BHJV2FBBXX",
        "/seq/n/251125_VH00123_42_AAFKJ2NM5",
    )
    assert is_marker(f"{miniseq}/RunCompletionStatus.xml", sequencers)
    assert not is_marker(f"{miniseq}/CopyComplete.txt", sequencers)
    assert is_marker(f"{hiseq}/SequencingComplete.txt", sequencers)
    assert not is_marker(f"{hiseq}/RTAComplete.txt", sequencers)
    assert is_marker(f"{nextseq}/CopyComplete.txt", sequencers)
    assert not is_marker(f"{nextseq}/RunCompletionStatus.xml", sequencers)


def test_plan_sorts_files_and_holds_markers_for_last() -> None:
    files = [
        entry(f"{RUN}/RTAComplete.txt", size=0),
        entry(f"{RUN}/RunInfo.xml"),
        entry(f"{RUN}/Data/new.cbcl", mtime=NOW - S),
        entry(f"{RUN}/Data/old.cbcl"),
        entry(f"{RUN}/Data/busy.cbcl"),
    ]
    index = {f"{RUN}/Data/old.cbcl".lstrip("/"): IndexedFile(10, NOW - 60 * S, 1)}
    plan = make_plan(
        files,
        index,
        now_ns=NOW,
        quiet_ns=QUIET,
        tracker=StabilityTracker(),
        sequencers=SEQUENCERS,
        busy=frozenset({f"{RUN}/Data/busy.cbcl".lstrip("/")}),
    )
    assert [e.nas_path for e in plan.ship] == [f"{RUN}/RunInfo.xml"]
    assert [e.nas_path for e in plan.markers] == [f"{RUN}/RTAComplete.txt"]
    assert sorted(e.nas_path for e in plan.pending) == [f"{RUN}/Data/busy.cbcl", f"{RUN}/Data/new.cbcl"]
    assert plan.unchanged == 1
    assert plan.to_transfer[-1].nas_path.endswith("RTAComplete.txt")


def test_runbook_summarises_each_run_folder() -> None:
    # GIVEN a scan of one run with a pending file, a marker and a failure, and a file outside any run
    book = RunBook(SEQUENCERS)
    book.add_scanned(entry(f"{RUN}/RunInfo.xml", size=100), pending=False)
    book.add_scanned(entry(f"{RUN}/Data/a.cbcl", size=50), pending=True)
    book.add_scanned(entry(f"{RUN}/RTAComplete.txt", size=0), pending=False)
    book.add_scanned(entry("/adhoc/list.txt"), pending=False)
    book.add_failure(ScanFailure(f"{RUN}/Data/bad", "unreadable"))
    # WHEN the pass transfers and verifies
    book.transferred(entry(f"{RUN}/RunInfo.xml", size=100))
    book.verified(entry(f"{RUN}/RunInfo.xml", size=100))
    # THEN one summary, with totals at scan and what happened
    (run,) = book.summaries()
    assert run.run_id == RUN.rsplit("/", 1)[1]
    assert run.nas_path == RUN
    assert run.s3_prefix == RUN.lstrip("/") + "/"
    assert (run.files_total, run.bytes_total) == (3, 150)
    assert (run.files_transferred, run.bytes_transferred, run.files_verified) == (1, 100, 1)
    assert (run.files_pending, run.files_failed) == (1, 1)
    assert run.markers == ["RTAComplete.txt"]
    assert book.blocked(entry(f"{RUN}/RTAComplete.txt"))


def test_config_defaults_and_validation() -> None:
    config = LocalBackendConfig()
    assert config.quiet_period_s == 2.0
    assert config.checksum == "crc32c"
    with pytest.raises(ValidationError):
        LocalBackendConfig(part_size=16 * MIB, multipart_threshold=8 * MIB)
    with pytest.raises(ValidationError):
        LocalBackendConfig(checksum="md5")  # type: ignore[arg-type]
