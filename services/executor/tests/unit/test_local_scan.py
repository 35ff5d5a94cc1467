"""The local engine's walk: DataSync include semantics on a table of cases, symlinks, special files."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from seqferry_executor.backends.local.scan import (
    KEY_COLLISION,
    KEY_TOO_LONG,
    SYMLINK_ESCAPE,
    SYMLINK_NOT_FOLLOWED,
    Scanner,
    object_key,
    original_path,
)
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


def test_by_default_symlinks_are_reported_not_followed(tmp_path: Path) -> None:
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "f.txt").write_text("x")
    (tmp_path / "seq" / "link").symlink_to(tmp_path / "seq" / "f.txt")
    (tmp_path / "seq" / "dirlink").symlink_to(tmp_path / "seq")
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [entry.nas_path for entry in result.files] == ["/seq/f.txt"]
    assert {(f.nas_path, f.reason) for f in result.failures} == {
        ("/seq/link", SYMLINK_NOT_FOLLOWED),
        ("/seq/dirlink", SYMLINK_NOT_FOLLOWED),
    }


def test_followed_links_must_lead_under_an_allowed_root_not_just_inside_the_nas(tmp_path: Path) -> None:
    # GIVEN a NAS holding the sequencer folder and another department's share, and a secret outside the NAS
    nas = tmp_path / "nas"
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "passwd").write_text("not for the bucket")
    hr = nas / "hr"
    hr.mkdir(parents=True)
    (hr / "salaries.csv").write_text("not for the bucket either")
    run = nas / "seq" / "run"
    run.mkdir(parents=True)
    (run / "real.txt").write_text("data")
    (run / "to-file").symlink_to(outside / "passwd")
    (run / "to-dir").symlink_to(outside)
    (run / "to-hr").symlink_to("../../hr/salaries.csv")
    (run / "to-hr-dir").symlink_to("../../hr")
    (run / "inside").symlink_to(run / "real.txt")
    # WHEN scanning with links followed and /seq the only allowed root
    result = Scanner(nas, follow_symlinks=True, allowed_roots=["/seq"]).scan(Matcher.of(["/seq"]))
    # THEN only the link that stays under /seq is read through (from its target); every other one is refused
    assert [(e.nas_path, e.source) for e in result.files] == [
        ("/seq/run/inside", "seq/run/real.txt"),
        ("/seq/run/real.txt", "seq/run/real.txt"),
    ]
    assert {(f.nas_path, f.reason) for f in result.failures} == {
        (f"/seq/run/{name}", SYMLINK_ESCAPE) for name in ("to-file", "to-dir", "to-hr", "to-hr-dir")
    }


def test_symlink_loops_and_broken_links_are_reported_not_followed_forever(tmp_path: Path) -> None:
    # GIVEN a folder linking to its parent (a loop) and a self-referencing link
    run = tmp_path / "seq" / "run"
    run.mkdir(parents=True)
    (run / "a.txt").write_text("a")
    (run / "up").symlink_to(tmp_path / "seq")
    (run / "self").symlink_to(run / "self")
    # WHEN scanning with links followed THEN every file is listed once and the unresolvable link is a failure
    result = Scanner(tmp_path, follow_symlinks=True).scan(Matcher.of(["/seq"]))
    assert [entry.nas_path for entry in result.files] == ["/seq/run/a.txt"]
    assert [f.nas_path for f in result.failures] == ["/seq/run/self"]
    assert "symbolic link unresolvable" in result.failures[0].reason


def test_special_files_are_reported_without_being_opened(tmp_path: Path) -> None:
    # GIVEN a FIFO (opening it for reading would block) and a socket next to a regular file
    (tmp_path / "seq").mkdir()
    os.mkfifo(tmp_path / "seq" / "pipe")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "s"))
    (tmp_path / "s").rename(tmp_path / "seq" / "sock")
    (tmp_path / "seq" / "f.txt").write_text("x")
    # WHEN scanning THEN they are reported with what they are, never listed as files
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [entry.nas_path for entry in result.files] == ["/seq/f.txt"]
    assert {(f.nas_path, f.reason) for f in result.failures} == {
        ("/seq/pipe", "FIFO (named pipe): not a regular file, not read"),
        ("/seq/sock", "socket: not a regular file, not read"),
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("RunInfo.xml", "RunInfo.xml"),
        ("Q Metrics+Out (1).bin", "Q Metrics+Out (1).bin"),
        ("Probe_M\u00fcller_\u6837\u672c.csv", "Probe_M\u00fcller_\u6837\u672c.csv"),
        ("100%.txt", "100%.txt"),
        (os.fsdecode(b"bad\xffname.bin"), "bad%FFname.bin"),
        (os.fsdecode(b"latin1-M\xfcller.csv"), "latin1-M%FCller.csv"),
        (os.fsdecode(b"encoded-surrogate-\xed\xa0\x80"), "encoded-surrogate-%ED%A0%80"),
        ("line\nbreak", "line%0Abreak"),
        ("tab\tand\x7fdel", "tab%09and%7Fdel"),
        ("rtl\u202eexe.txt", "rtl%E2%80%AEexe.txt"),
        ("para\u2029sep", "para%E2%80%A9sep"),
    ],
)
def test_object_keys_escape_only_what_is_not_a_printable_character(name: str, key: str) -> None:
    # A name that is valid UTF-8 and printable is its own key (as DataSync writes it); bytes that are not UTF-8
    # and control or invisible formatting characters become %XX.
    assert object_key(f"/seq/{name}") == f"seq/{key}"
    assert object_key(f"/seq/{name}").encode("utf-8")
    assert unquote_to_bytes(original_path(f"/seq/{name}")) == b"/seq/" + os.fsencode(name)


def test_names_that_escape_to_the_same_key_are_both_refused(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    (folder / "a%FF.txt").write_text("literal percent")
    Path(os.fsdecode(os.fsencode(folder) + b"/a\xff.txt")).write_text("latin-1 byte")
    (folder / "b.txt").write_text("fine")
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [e.key for e in result.files] == ["seq/b.txt"]
    assert sorted(object_key(f.nas_path) for f in result.failures) == ["seq/a%FF.txt", "seq/a%FF.txt"]
    assert {f.reason for f in result.failures} == {KEY_COLLISION}


def test_a_file_whose_key_would_pass_1024_bytes_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "seq" / ("d" * 250) / ("e" * 250) / ("f" * 250) / ("h" * 250)
    folder.mkdir(parents=True)
    (folder / ("g" * 250)).write_text("too long a key")
    (folder / "ok").write_text("fits")
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [e.nas_path.rsplit("/", 1)[1] for e in result.files] == ["ok"]
    assert [(len(object_key(f.nas_path)), f.reason) for f in result.failures] == [(4 + 4 * 251 + 250, KEY_TOO_LONG)]
