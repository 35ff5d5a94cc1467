"""The local engine's walk: DataSync include semantics on a table of cases, symlinks, special files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seqferry_executor.backends.local.scan import SYMLINK_ESCAPE, Scanner
from seqferry_shared.patterns import Matcher

TREE = (
    "/seq/miseq/241101_M1_0001_A/RunInfo.xml",
    "/seq/miseq/241101_M1_0001_A/Data/L001/s_1.cbcl",
    "/seq/miseq/241102_M1_0002_B/RunInfo.xml",
    "/seq/miseq/2411/notes.txt",
    "/seq/miseq-old/241101_X/RunInfo.xml",
    "/seq/miseqx",
    "/adhoc/list.txt",
    "/top.txt",
)


@pytest.fixture
def nas(tmp_path: Path) -> Path:
    for nas_path in TREE:
        path = tmp_path / nas_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nas_path.encode())
    return tmp_path


def scanned(nas: Path, *patterns: str) -> set[str]:
    result = Scanner(nas).scan(Matcher.of(patterns))
    assert result.failures == []
    return {entry.nas_path for entry in result.files}


# DataSync: "/dir" and "/dir/" include the folder and everything under it; "*" only trailing, a plain prefix.
CASES = [
    (["/seq/miseq"], {p for p in TREE if p.startswith("/seq/miseq/")}),
    (["/seq/miseq/"], {p for p in TREE if p.startswith("/seq/miseq/")}),
    (["/seq/miseq*"], {p for p in TREE if p.startswith("/seq/miseq")}),
    (["/seq/miseq/2411*"], {p for p in TREE if p.startswith("/seq/miseq/2411")}),
    (
        ["/seq/miseq/241101*"],
        {"/seq/miseq/241101_M1_0001_A/RunInfo.xml", "/seq/miseq/241101_M1_0001_A/Data/L001/s_1.cbcl"},
    ),
    (["/seq/miseq/241101_M1_0001_A/Data"], {"/seq/miseq/241101_M1_0001_A/Data/L001/s_1.cbcl"}),
    (["/seq/miseq/241101_M1_0001_A/RunInfo.xml"], {"/seq/miseq/241101_M1_0001_A/RunInfo.xml"}),
    (["/seq/miseq/241101_M1_0001_A/Run*"], {"/seq/miseq/241101_M1_0001_A/RunInfo.xml"}),
    (["/seq/miseq/2411"], {"/seq/miseq/2411/notes.txt"}),
    (["/seq/mi"], set()),
    (["/seq/nothing-here"], set()),
    (["/adhoc", "/top.txt"], {"/adhoc/list.txt", "/top.txt"}),
    (["/"], set(TREE)),
    (["/*"], set(TREE)),
    (["/seq/miseqx"], {"/seq/miseqx"}),
]


@pytest.mark.parametrize(("patterns", "expected"), CASES, ids=[" | ".join(c[0]) for c in CASES])
def test_include_patterns_match_datasync_semantics(nas: Path, patterns: list[str], expected: set[str]) -> None:
    # GIVEN a NAS tree WHEN scanning with DataSync include patterns THEN exactly the included files come back
    assert scanned(nas, *patterns) == expected


def test_keys_are_paths_relative_to_the_nas_root(nas: Path) -> None:
    result = Scanner(nas).scan(Matcher.of(["/adhoc"]))
    assert [entry.key for entry in result.files] == ["adhoc/list.txt"]


def test_symlink_leading_outside_the_root_is_refused(tmp_path: Path) -> None:
    # GIVEN a NAS with a link to a file and a link to a folder outside it, and a link that stays inside
    nas = tmp_path / "nas"
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "passwd").write_text("not for the bucket")
    run = nas / "seq" / "run"
    run.mkdir(parents=True)
    (run / "real.txt").write_text("data")
    (run / "to-file").symlink_to(outside / "passwd")
    (run / "to-dir").symlink_to(outside)
    (run / "inside").symlink_to(run / "real.txt")
    # WHEN scanning
    result = Scanner(nas).scan(Matcher.of(["/seq"]))
    # THEN the escaping links are failures with the reason, the inner link is read through
    assert {entry.nas_path for entry in result.files} == {"/seq/run/real.txt", "/seq/run/inside"}
    assert {(f.nas_path, f.reason) for f in result.failures} == {
        ("/seq/run/to-file", SYMLINK_ESCAPE),
        ("/seq/run/to-dir", SYMLINK_ESCAPE),
    }


def test_symlink_loops_and_broken_links_are_reported_not_followed_forever(tmp_path: Path) -> None:
    # GIVEN a folder linking to its parent (a loop) and a self-referencing link
    run = tmp_path / "seq" / "run"
    run.mkdir(parents=True)
    (run / "a.txt").write_text("a")
    (run / "up").symlink_to(tmp_path / "seq")
    (run / "self").symlink_to(run / "self")
    # WHEN scanning THEN every file is listed once and the unresolvable link is a failure
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [entry.nas_path for entry in result.files] == ["/seq/run/a.txt"]
    assert [f.nas_path for f in result.failures] == ["/seq/run/self"]
    assert "symlink unresolvable" in result.failures[0].reason


def test_fifo_is_skipped_without_being_opened(tmp_path: Path) -> None:
    # GIVEN a FIFO (opening it for reading would block) next to a regular file
    (tmp_path / "seq").mkdir()
    os.mkfifo(tmp_path / "seq" / "pipe")
    (tmp_path / "seq" / "f.txt").write_text("x")
    # WHEN scanning THEN it is counted as skipped and never listed
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [entry.nas_path for entry in result.files] == ["/seq/f.txt"]
    assert result.special_skipped == 1


def test_symlinks_not_followed_when_disabled(tmp_path: Path) -> None:
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "f.txt").write_text("x")
    (tmp_path / "seq" / "link").symlink_to(tmp_path / "seq" / "f.txt")
    result = Scanner(tmp_path, follow_symlinks=False).scan(Matcher.of(["/seq"]))
    assert [entry.nas_path for entry in result.files] == ["/seq/f.txt"]
    assert result.special_skipped == 1
