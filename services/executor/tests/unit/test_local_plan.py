"""The local engine's decisions: stability, change detection, marker ordering, per-run summaries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from seqferry_executor.backends.local.config import MIB, LocalBackendConfig
from seqferry_executor.backends.local.finality import Finality
from seqferry_executor.backends.local.index import IndexedFile
from seqferry_executor.backends.local.plan import (
    Action,
    RunBook,
    StabilityTracker,
    Timing,
    classify,
    is_marker,
    is_stable,
    make_plan,
)
from seqferry_executor.backends.local.scan import FileEntry, FolderScan, ScanFailure
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


TIMING = Timing.of(settle_s=0.2, quiet_s=2, hold_s=300)


def test_plan_holds_markers_for_last_and_leaves_busy_and_fresh_files_pending() -> None:
    files = [
        entry(f"{RUN}/RTAComplete.txt", size=0),
        entry(f"{RUN}/RunInfo.xml"),
        entry(f"{RUN}/Data/new.cbcl", mtime=NOW - S // 10),
        entry(f"{RUN}/Data/busy.cbcl"),
    ]
    plan = make_plan(
        [(f, None) for f in files],
        now_ns=NOW,
        timing=TIMING,
        tracker=StabilityTracker(),
        sequencers=SEQUENCERS,
        busy=frozenset({f"{RUN}/Data/busy.cbcl".lstrip("/")}),
    )
    assert [e.nas_path for e in plan.ship] == [f"{RUN}/RunInfo.xml"]
    assert [e.nas_path for e in plan.markers] == [f"{RUN}/RTAComplete.txt"]
    assert sorted(e.nas_path for e in plan.pending) == [f"{RUN}/Data/busy.cbcl", f"{RUN}/Data/new.cbcl"]
    # ... the fresh one settles within the settle time: the pass may watch it and send it once it has
    assert [(e.nas_path, marker, when_full) for e, marker, when_full in plan.soon] == [
        (f"{RUN}/Data/new.cbcl", False, False)
    ]
    assert plan.to_transfer[-1].nas_path.endswith("RTAComplete.txt")


@pytest.mark.parametrize(
    ("finality", "optimistic", "needed"),
    [
        (Finality.FINAL, True, S // 5),
        (Finality.COMPLETE_WHEN_FULL, True, S // 5),
        (Finality.UNKNOWN, True, S // 5),
        (Finality.UNKNOWN, False, 2 * S),
        (Finality.GROWING, True, 300 * S),
        (Finality.GROWING, False, 300 * S),
    ],
)
def test_how_long_a_file_must_be_quiet_depends_on_what_its_instrument_says(
    finality: Finality, optimistic: bool, needed: int
) -> None:
    timing = Timing.of(settle_s=0.2, quiet_s=2, hold_s=300, optimistic=optimistic)
    assert timing.needed(finality) == needed


def test_settle_time_never_exceeds_the_quiet_period_nor_the_hold_falls_below_it() -> None:
    timing = Timing.of(settle_s=5, quiet_s=1, hold_s=0)
    assert (timing.settle_ns, timing.quiet_ns, timing.hold_ns) == (S, S, S)


def test_runbook_summarises_each_run_folder() -> None:
    # GIVEN the scan of a run's folders: its top (a marker, a file), its data (one file pending, one unchanged, a
    # failure), and a file outside any run
    book = RunBook(SEQUENCERS)
    top = FolderScan(RUN, RUN[1:], files=2, bytes=100, markers=["RTAComplete.txt"])
    data = FolderScan(f"{RUN}/Data", f"{RUN}/Data"[1:], files=2, bytes=80, unchanged=1)
    data.failures.append(ScanFailure(f"{RUN}/Data/bad", "unreadable"))
    book.add_folder(top)
    book.add_folder(data)
    book.add_folder(FolderScan("/adhoc", "adhoc", files=1, bytes=5))
    book.add_folder(FolderScan("/seq/miseq", "seq/miseq", files=1, bytes=5, markers=["RTAComplete.txt"]))
    book.deferred(entry(f"{RUN}/Data/a.cbcl", size=50))
    # WHEN the pass transfers and verifies
    book.transferred(entry(f"{RUN}/RunInfo.xml", size=100))
    book.verified(entry(f"{RUN}/RunInfo.xml", size=100))
    # THEN one summary, with totals at scan and what happened
    (run,) = book.summaries()
    assert run.run_id == RUN.rsplit("/", 1)[1]
    assert run.nas_path == RUN
    assert run.s3_prefix == RUN.lstrip("/") + "/"
    assert (run.files_total, run.bytes_total) == (4, 180)
    assert (run.files_transferred, run.bytes_transferred, run.files_verified) == (1, 100, 1)
    assert (run.files_pending, run.files_failed) == (1, 1)
    assert run.markers == ["RTAComplete.txt"]
    assert book.blocked(entry(f"{RUN}/RTAComplete.txt"))
    # WHEN the pending file settles within the pass THEN it is no longer pending; the failure still holds the marker
    book.resumed(entry(f"{RUN}/Data/a.cbcl", size=50))
    assert book.summaries()[0].files_pending == 0
    assert book.blocked(entry(f"{RUN}/RTAComplete.txt"))


def test_config_defaults_and_validation() -> None:
    config = LocalBackendConfig()
    assert config.quiet_period_s == 2.0
    assert config.checksum == "crc32c"
    with pytest.raises(ValidationError):
        LocalBackendConfig(part_size=16 * MIB, multipart_threshold=8 * MIB)
    with pytest.raises(ValidationError):
        LocalBackendConfig(checksum="md5")  # type: ignore[arg-type]
