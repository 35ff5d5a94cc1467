"""The local engine's walk: DataSync include semantics on a table of cases, symlinks, special files."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from seqferry_executor.backends.local.index import ChangeIndex, IndexedFile
from seqferry_executor.backends.local.scan import (
    KEY_COLLISION,
    KEY_TOO_LONG,
    SYMLINK_ESCAPE,
    SYMLINK_NOT_FOLLOWED,
    FolderScan,
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


def test_folders_whose_names_escape_to_the_same_key_are_both_refused_once(tmp_path: Path) -> None:
    # GIVEN two folders whose names escape to one key, each holding a file of the same name
    (tmp_path / "seq" / "x%FF").mkdir(parents=True)
    Path(os.fsdecode(os.fsencode(tmp_path / "seq") + b"/x\xff")).mkdir()
    for folder in ("x%FF", os.fsdecode(b"x\xff")):
        (tmp_path / "seq" / folder / "f.txt").write_bytes(b"data")
    (tmp_path / "seq" / "ok.txt").write_text("fine")
    # WHEN scanning THEN neither folder is walked, each is reported once, the rest goes on
    result = Scanner(tmp_path).scan(Matcher.of(["/seq"]))
    assert [e.key for e in result.files] == ["seq/ok.txt"]
    assert sorted((object_key(f.nas_path), f.reason) for f in result.failures) == [
        ("seq/x%FF", KEY_COLLISION),
        ("seq/x%FF", KEY_COLLISION),
    ]


def test_a_folder_whose_files_all_match_their_rows_is_then_counted_without_a_lookup(tmp_path: Path) -> None:
    # GIVEN a folder of files all recorded in the index, and a folder with a name that needs escaping
    run = tmp_path / "seq" / "run"
    run.mkdir(parents=True)
    for i in range(5):
        (run / f"f{i}.bin").write_bytes(b"x" * i)
    odd = tmp_path / "seq" / "odd"
    odd.mkdir()
    (odd / "100%.txt").write_text("literal percent: never the fast path")
    index = ChangeIndex.open(tmp_path / "index.sqlite", "dest")
    scanner = Scanner(tmp_path)
    for entry in scanner.scan(Matcher.of(["/seq"])).files:
        index.record(entry.key, IndexedFile(entry.size, entry.mtime_ns, entry.ino))

    def walk() -> dict[str, FolderScan]:
        with index.reader() as reader:
            return {scan.key: scan for scan in scanner.walk(Matcher.of(["/seq"]), reader)}

    # WHEN walked with the index THEN every file is unchanged; the plain folder offers its digest, the odd one not
    first = walk()
    assert (first["seq/run"].unchanged, first["seq/run"].candidates, first["seq/run"].settled) == (5, [], False)
    assert first["seq/run"].digest is not None
    assert first["seq/odd"].digest is None
    digest = first["seq/run"].digest
    index.set_digest("seq/run", digest, first["seq/run"].writes)
    # WHEN walked again THEN the folder is settled from its digest: counted, nothing looked up, same totals
    second = walk()
    assert (second["seq/run"].settled, second["seq/run"].unchanged, second["seq/run"].files) == (True, 5, 5)
    assert second["seq/run"].names is None
    assert second["seq/odd"].unchanged == 1
    # WHEN one file changes THEN the folder is looked up again and only that file is a candidate
    (run / "f3.bin").write_bytes(b"changed")
    third = walk()
    assert not third["seq/run"].settled
    assert third["seq/run"].unchanged == 4
    assert [e.nas_path for e, _ in third["seq/run"].candidates] == ["/seq/run/f3.bin"]
    (row,) = [known for _, known in third["seq/run"].candidates]
    assert row is not None
    assert row.size == 3
    index.close()


def test_a_large_folder_is_compared_with_its_rows_read_in_one_range(tmp_path: Path) -> None:
    # GIVEN a folder of 100 files (enough for one range read of its rows) and a subfolder with a file of its own
    run = tmp_path / "seq" / "run"
    (run / "sub").mkdir(parents=True)
    for i in range(100):
        (run / f"f{i:03d}.bin").write_bytes(b"x" * i)
    (run / "sub" / "f000.bin").write_bytes(b"other")
    index = ChangeIndex.open(tmp_path / "index.sqlite", "dest")
    scanner = Scanner(tmp_path)
    for entry in scanner.scan(Matcher.of(["/seq"])).files:
        index.record(entry.key, IndexedFile(entry.size, entry.mtime_ns, entry.ino))
    index.flush()
    # ... then, not yet written to disk: one file's row replaced (it changed and was sent again) and one forgotten
    changed = run / "f007.bin"
    changed.write_bytes(b"changed")
    st = changed.stat()
    index.record("seq/run/f007.bin", IndexedFile(st.st_size, st.st_mtime_ns, st.st_ino))
    index.forget("seq/run/f008.bin")
    (run / "f009.bin").write_bytes(b"changed on the NAS only")
    # WHEN walked with the index
    with index.reader() as reader:
        scans = {scan.key: scan for scan in scanner.walk(Matcher.of(["/seq"]), reader)}
    # THEN rows not yet written count, the forgotten file and the one changed on the NAS are the only candidates
    folder = scans["seq/run"]
    assert sorted((e.nas_path, known is not None) for e, known in folder.candidates) == [
        ("/seq/run/f008.bin", False),
        ("/seq/run/f009.bin", True),
    ]
    assert (folder.unchanged, folder.files) == (98, 100)
    assert scans["seq/run/sub"].unchanged == 1
    index.close()


def test_a_large_folder_s_range_read_skips_its_subfolders_rows_and_misses_none_of_its_files(tmp_path: Path) -> None:
    # GIVEN a folder of 100 files whose names sort around those of its subfolders ('f050' and 'f050.x' hold files
    # too, and 'f050.x/' sorts before 'f050/'), all recorded in the index
    run = tmp_path / "seq" / "run"
    run.mkdir(parents=True)
    for i in range(100):
        (run / f"f{i:03d}.bin").write_bytes(b"x" * i)
    for name in ("f050", "f050.x", "f0500"):
        (run / name / "deeper").mkdir(parents=True)
        (run / name / "inner.bin").write_bytes(b"inner")
        (run / name / "deeper" / "leaf.bin").write_bytes(b"leaf")
    (run / "f050.y").write_bytes(b"between the subfolders")
    index = ChangeIndex.open(tmp_path / "index.sqlite", "dest")
    scanner = Scanner(tmp_path)
    for entry in scanner.scan(Matcher.of(["/seq"])).files:
        index.record(entry.key, IndexedFile(entry.size, entry.mtime_ns, entry.ino))
    index.record("seq/run/f050.gone/x.bin", IndexedFile(1, 1))  # a subfolder since removed from the NAS
    index.flush()
    # WHEN one file of the folder and one of a subfolder change, and the tree is walked with the index
    (run / "f050.y").write_bytes(b"changed")
    (run / "f050" / "inner.bin").write_bytes(b"changed too")
    with index.reader() as reader:
        scans = {scan.key: scan for scan in scanner.walk(Matcher.of(["/seq"]), reader)}
    # THEN the folder's own changed file is its only candidate, and each subfolder is compared with its own rows
    folder = scans["seq/run"]
    assert [e.nas_path for e, _ in folder.candidates] == ["/seq/run/f050.y"]
    assert (folder.unchanged, folder.files) == (100, 101)
    assert [e.nas_path for e, _ in scans["seq/run/f050"].candidates] == ["/seq/run/f050/inner.bin"]
    assert all(not scans[f"seq/run/{name}"].candidates for name in ("f050.x", "f0500"))
    assert all(scans[f"seq/run/{name}/deeper"].unchanged == 1 for name in ("f050", "f050.x", "f0500"))
    index.close()
    # AND the rows read for the folder are its files' alone
    index = ChangeIndex.open(tmp_path / "index.sqlite", "dest")
    with index.reader() as reader:
        rows = reader.folder_rows("seq/run/", ["seq/run/f050", "seq/run/f050.x", "seq/run/f0500"])
    assert sorted(rows) == sorted([f"f{i:03d}.bin" for i in range(100)] + ["f050.y"])
    index.close()
