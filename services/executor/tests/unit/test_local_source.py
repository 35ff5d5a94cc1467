"""Opening exactly the scanned file: with openat2 and with the O_NOFOLLOW walk used where the kernel lacks it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seqferry_executor.backends.local.scan import FileEntry, Scanner
from seqferry_executor.backends.local.source import NOT_REGULAR, REMOVED, REPLACED_BY_LINK, SourceError, SourceRoot
from seqferry_shared.patterns import Matcher


@pytest.fixture(params=["openat2", "walk"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> SourceRoot:
    opened = SourceRoot(str(tmp_path))
    if request.param == "walk":
        opened._openat2 = False
    yield opened  # type: ignore[misc]
    opened.close()


def scanned(tmp_path: Path, *names: str) -> dict[str, FileEntry]:
    for name in names:
        path = tmp_path / "run" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
    return {e.nas_path.rsplit("/", 1)[1]: e for e in Scanner(tmp_path).scan(Matcher.of(["/run"])).files}


def reason(root: SourceRoot, entry: FileEntry) -> str:
    with pytest.raises(SourceError) as info:
        root.open(entry)
    return info.value.reason


def test_the_scanned_file_is_opened_and_read_through_a_magic_link(root: SourceRoot, tmp_path: Path) -> None:
    entry = scanned(tmp_path, "a.txt")["a.txt"]
    source = root.open(entry)
    try:
        assert source.unchanged()
        # The magic link opens the held inode even after the path is given to another file (the rename changes
        # the inode's ctime: the engine would not count such an upload verified, and ships the file again).
        (tmp_path / "run" / "a.txt").rename(tmp_path / "run" / "moved")
        (tmp_path / "run" / "a.txt").write_bytes(b"someone else's")
        assert Path(source.path).read_bytes() == b"a.txt"
        assert not source.unchanged()
    finally:
        source.close()


def test_a_file_or_a_folder_replaced_by_a_link_is_not_read(root: SourceRoot, tmp_path: Path) -> None:
    entries = scanned(tmp_path, "f.txt", "sub/g.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "g.txt").write_bytes(b"secret")
    (tmp_path / "run" / "f.txt").unlink()
    (tmp_path / "run" / "f.txt").symlink_to(outside / "g.txt")
    (tmp_path / "run" / "sub").rename(tmp_path / "run" / "sub.orig")
    (tmp_path / "run" / "sub").symlink_to(outside)
    assert reason(root, entries["f.txt"]) == REPLACED_BY_LINK
    assert reason(root, entries["g.txt"]) == REPLACED_BY_LINK


def test_removed_changed_and_special_files(root: SourceRoot, tmp_path: Path) -> None:
    entries = scanned(tmp_path, "gone.txt", "changed.txt", "fifo")
    (tmp_path / "run" / "gone.txt").unlink()
    with (tmp_path / "run" / "changed.txt").open("ab") as handle:
        handle.write(b"more")
    (tmp_path / "run" / "fifo").unlink()
    os.mkfifo(tmp_path / "run" / "fifo")  # a FIFO in place of a scanned file: never opened for reading
    assert reason(root, entries["gone.txt"]) == REMOVED
    with pytest.raises(SourceError) as info:
        root.open(entries["changed.txt"])
    assert info.value.changed
    assert reason(root, entries["fifo"]) == NOT_REGULAR
