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

from seqferry_shared.patterns import Matcher

SYMLINK_ESCAPE = "symlink leads outside the NAS root"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One included regular file as seen at scan time."""

    nas_path: str  # absolute on the NAS, e.g. /sequencers/incoming/miseq/run/RunInfo.xml
    path: str  # where to read it on this host
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int

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
    return FileEntry(nas_path, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


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
        result = ScanResult()
        root_st = os.stat(self._root)
        visited = {(root_st.st_dev, root_st.st_ino)}
        # (folder on this host, its NAS path, everything below it is included)
        stack: list[tuple[str, str, bool]] = [(self._root, "", matcher.matches("/"))]
        while stack:
            folder, nas_folder, all_in = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    listing = list(entries)
            except OSError as exc:
                result.failures.append(ScanFailure(nas_folder or "/", f"folder unreadable: {describe_os_error(exc)}"))
                continue
            for entry in listing:
                nas_path = f"{nas_folder}/{entry.name}"
                self._visit(entry, nas_path, all_in, matcher, result, stack, visited)
        result.files.sort(key=lambda f: f.nas_path)
        return result

    def _visit(
        self,
        entry: os.DirEntry[str],
        nas_path: str,
        all_in: bool,
        matcher: Matcher,
        result: ScanResult,
        stack: list[tuple[str, str, bool]],
        visited: set[tuple[int, int]],
    ) -> None:
        try:
            if entry.is_symlink():
                self._visit_symlink(entry, nas_path, all_in, matcher, result, stack, visited)
            elif entry.is_dir(follow_symlinks=False):
                self._descend(entry.path, nas_path, all_in, matcher, stack, visited, entry.stat(follow_symlinks=False))
            elif all_in or matcher.matches(nas_path):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    result.files.append(entry_from_stat(nas_path, entry.path, st))
                else:
                    result.special_skipped += 1
        except OSError as exc:
            if all_in or matcher.matches(nas_path):
                result.failures.append(ScanFailure(nas_path, describe_os_error(exc)))

    def _visit_symlink(
        self,
        entry: os.DirEntry[str],
        nas_path: str,
        all_in: bool,
        matcher: Matcher,
        result: ScanResult,
        stack: list[tuple[str, str, bool]],
        visited: set[tuple[int, int]],
    ) -> None:
        included = all_in or matcher.matches(nas_path)
        if not (included or matcher.may_contain(nas_path)):
            return
        if not self._follow:
            if included:
                result.special_skipped += 1
            return
        try:
            target = os.path.realpath(entry.path, strict=True)
        except OSError as exc:
            if included:
                result.failures.append(ScanFailure(nas_path, f"symlink unresolvable: {describe_os_error(exc)}"))
            return
        if not self._inside_root(target):
            if included:
                result.failures.append(ScanFailure(nas_path, SYMLINK_ESCAPE))
            return
        st = os.stat(target)
        if stat.S_ISDIR(st.st_mode):
            self._descend(target, nas_path, all_in, matcher, stack, visited, st)
        elif not included:
            return
        elif stat.S_ISREG(st.st_mode):
            result.files.append(entry_from_stat(nas_path, target, st))
        else:
            result.special_skipped += 1

    def _descend(
        self,
        folder: str,
        nas_path: str,
        all_in: bool,
        matcher: Matcher,
        stack: list[tuple[str, str, bool]],
        visited: set[tuple[int, int]],
        st: os.stat_result,
    ) -> None:
        if not (all_in or matcher.may_contain(nas_path)):
            return
        identity = (st.st_dev, st.st_ino)
        if identity in visited:
            return
        visited.add(identity)
        stack.append((folder, nas_path, all_in or matcher.matches(nas_path)))

    def _inside_root(self, target: str) -> bool:
        return target == self._root or target.startswith(self._root.rstrip("/") + "/")
