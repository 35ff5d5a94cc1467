"""Walk the NAS below the include patterns: one ``scandir`` per folder and one ``stat`` per included file.

Folders that no pattern can reach are never opened (``Matcher.may_contain``). Symlinks are followed only while
their resolved target stays inside the NAS root; a folder reached twice (a link loop) is walked once. Special
files (FIFOs, sockets, devices) are skipped, never opened: reading a FIFO would block the engine forever.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from seqferry_shared.patterns import Matcher

SYMLINK_ESCAPE = "symlink leads outside the NAS root"


class FileEntry(NamedTuple):
    """One included regular file as seen at scan time (a tuple: a scan makes one per file, cheaply)."""

    nas_path: str  # absolute on the NAS, e.g. /sequencers/incoming/miseq/run/RunInfo.xml
    path: str  # where to read it on this host
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    mode: int = 0o100644
    uid: int = 0
    gid: int = 0
    atime_ns: int = 0

    @property
    def key(self) -> str:
        """Object key: the path relative to the NAS root, as DataSync writes it."""
        return self.nas_path.lstrip("/")

    def same_as(self, st: os.stat_result) -> bool:
        """True if ``st`` describes the very content this entry was scanned with."""
        return (
            st.st_size == self.size
            and st.st_mtime_ns == self.mtime_ns
            and st.st_ctime_ns == self.ctime_ns
            and st.st_ino == self.ino
        )


@dataclass(frozen=True, slots=True)
class ScanFailure:
    nas_path: str
    reason: str


@dataclass(slots=True)
class ScanResult:
    files: list[FileEntry] = field(default_factory=list)
    failures: list[ScanFailure] = field(default_factory=list)
    special_skipped: int = 0


def entry_from_stat(nas_path: str, path: str, st: os.stat_result) -> FileEntry:
    return FileEntry(
        nas_path,
        path,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_atime_ns,
    )


def describe_os_error(exc: OSError) -> str:
    """A short reason for a report; never the file's content, only what the OS said."""
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or type(exc).__name__
    return f"{text} ({name})" if name else text


class Scanner:
    """Scans the included part of the NAS; safe to run in a worker thread."""

    def __init__(self, nas_root: Path, *, follow_symlinks: bool = True) -> None:
        self._root = os.path.realpath(nas_root)
        self._follow = follow_symlinks

    def scan(self, matcher: Matcher) -> ScanResult:
        return _Walk(self._root, matcher, follow_symlinks=self._follow).run()


class _Walk:
    """The state of one scan: what was found, what is left to visit, which folders were already seen."""

    def __init__(self, root: str, matcher: Matcher, *, follow_symlinks: bool) -> None:
        self.root = root
        self.matcher = matcher
        self.follow = follow_symlinks
        self.result = ScanResult()
        # (folder on this host, its NAS path, everything below it is included)
        self.stack: list[tuple[str, str, bool]] = []
        self.visited: set[tuple[int, int]] = set()

    def run(self) -> ScanResult:
        root_st = os.stat(self.root)
        self.visited.add((root_st.st_dev, root_st.st_ino))
        self.stack.append((self.root, "", self.matcher.matches("/")))
        while self.stack:
            folder, nas_folder, all_in = self.stack.pop()
            try:
                with os.scandir(folder) as entries:
                    listing = list(entries)
            except OSError as exc:
                reason = f"folder unreadable: {describe_os_error(exc)}"
                self.result.failures.append(ScanFailure(nas_folder or "/", reason))
                continue
            files = self.result.files
            for entry in listing:
                nas_path = f"{nas_folder}/{entry.name}"
                # Fast path, most entries of a run folder: a regular file (known from d_type, no syscall).
                if all_in and entry.is_file(follow_symlinks=False):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        self.result.failures.append(ScanFailure(nas_path, describe_os_error(exc)))
                        continue
                    files.append(entry_from_stat(nas_path, entry.path, st))
                    continue
                self.visit(entry, nas_path, all_in)
        self.result.files.sort()
        return self.result

    def visit(self, entry: os.DirEntry[str], nas_path: str, all_in: bool) -> None:
        try:
            if entry.is_symlink():
                self.visit_symlink(entry, nas_path, all_in)
            elif entry.is_dir(follow_symlinks=False):
                self.descend(entry.path, nas_path, all_in, entry.stat(follow_symlinks=False))
            elif all_in or self.matcher.matches(nas_path):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    self.result.files.append(entry_from_stat(nas_path, entry.path, st))
                else:
                    self.result.special_skipped += 1
        except OSError as exc:
            if all_in or self.matcher.matches(nas_path):
                self.result.failures.append(ScanFailure(nas_path, describe_os_error(exc)))

    def visit_symlink(self, entry: os.DirEntry[str], nas_path: str, all_in: bool) -> None:
        included = all_in or self.matcher.matches(nas_path)
        if not (included or self.matcher.may_contain(nas_path)):
            return
        if not self.follow:
            if included:
                self.result.special_skipped += 1
            return
        try:
            target = os.path.realpath(entry.path, strict=True)
        except OSError as exc:
            if included:
                reason = f"symlink unresolvable: {describe_os_error(exc)}"
                self.result.failures.append(ScanFailure(nas_path, reason))
            return
        if not self.inside_root(target):
            if included:
                self.result.failures.append(ScanFailure(nas_path, SYMLINK_ESCAPE))
            return
        st = os.stat(target)
        if stat.S_ISDIR(st.st_mode):
            self.descend(target, nas_path, all_in, st)
        elif not included:
            return
        elif stat.S_ISREG(st.st_mode):
            self.result.files.append(entry_from_stat(nas_path, target, st))
        else:
            self.result.special_skipped += 1

    def descend(self, folder: str, nas_path: str, all_in: bool, st: os.stat_result) -> None:
        if not (all_in or self.matcher.may_contain(nas_path)):
            return
        identity = (st.st_dev, st.st_ino)
        if identity in self.visited:
            return
        self.visited.add(identity)
        self.stack.append((folder, nas_path, all_in or self.matcher.matches(nas_path)))

    def inside_root(self, target: str) -> bool:
        return target == self.root or target.startswith(self.root.rstrip("/") + "/")
