"""Walk the NAS below the include patterns: one ``scandir`` per folder and one ``lstat`` per included file.

The walk yields one :class:`FolderScan` per folder, a folder before anything below it, and compares each folder with
the change index as it goes: a folder whose listing hashes to the digest the index holds for it is counted unchanged
without a lookup; a large folder's rows are read in one range; the rest are looked up in bulk. Only files that are
not unchanged become entries, so memory follows the folder being walked, not the tree.

Folders that no pattern can reach are never opened (``Matcher.may_contain``). Nothing is ever opened for reading
here, and every entry that cannot be shipped is a per-file problem with a reason, never an exception:

- symbolic links are not followed by default (reported, as DataSync reports what it skips); with
  ``follow_symlinks`` a link is followed only when its resolved target lies under an allowed root (the sequencer
  paths and the ad-hoc folder), not merely inside the NAS mount; a folder reached twice (a loop) is walked once;
- FIFOs, sockets and devices are reported, never opened (reading a FIFO would block the engine forever);
- a path whose object key would exceed S3's 1,024 bytes is reported (a folder once, without walking below it).

Object keys are the path relative to the NAS root, as DataSync writes them, except that every byte of a name that
is not UTF-8, and every control or invisible formatting character, is written ``%XX`` (its bytes in hex):
``bad<0xff>name.bin`` becomes ``bad%FFname.bin``, a newline ``%0A``. Such objects also carry the exact original
path (percent-encoded bytes) in their metadata, so the mapping loses nothing. Two names of one pass that map to
the same key are both reported and neither is shipped (keys are escaped name by name, so two equal keys first meet
as two names in one folder: two such files are each reported, two such folders each reported once and not walked).
Reports show paths in the same escaped form.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from seqferry_executor.backends.local.index import IndexedFile, IndexReader, is_unchanged
from seqferry_shared.patterns import Matcher

MAX_KEY_BYTES = 1024
DIGEST_MASK = (1 << 64) - 1
# From this many files on, a folder's rows are read in one range instead of looked up key by key.
RANGE_READ_MIN = 64
SYMLINK_NOT_FOLLOWED = "symbolic link, not followed (SEQFERRY_LOCAL__FOLLOW_SYMLINKS is off)"
SYMLINK_ESCAPE = "symbolic link to a target outside the allowed roots, not followed"
SYMLINK_UNRESOLVABLE = "symbolic link unresolvable"
KEY_TOO_LONG = "path longer than S3's 1,024-byte key limit, not transferred"
KEY_COLLISION = "another name maps to the same object key once escaped, not transferred"
_SPECIAL_KINDS = {
    stat.S_IFIFO: "FIFO (named pipe)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

Signature = tuple[int, ...]


def object_key(nas_path: str) -> str:
    """The object key of a NAS path (see the module's docstring for the escaping)."""
    return escape_name(nas_path.lstrip("/"))


def escape_name(text: str) -> str:
    """``text`` with bytes that are not UTF-8 and control or invisible formatting characters written %XX."""
    if text.isascii() and text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8, as os.fsdecode carries it
            out.append(f"%{ord(ch) - 0xDC00:02X}")
        elif unicodedata.category(ch) in _ESCAPED_CATEGORIES:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
        else:
            out.append(ch)
    return "".join(out)


def shown(nas_path: str) -> str:
    """A NAS path as reports show it: escaped like object keys, so always printable and valid UTF-8."""
    return "/" + object_key(nas_path)


def original_path(nas_path: str) -> str:
    """The exact bytes of a NAS path, percent-encoded (RFC 3986): the metadata of objects whose key is escaped."""
    return quote(os.fsencode(nas_path), safe="/")


def special_reason(mode: int) -> str:
    kind = _SPECIAL_KINDS.get(stat.S_IFMT(mode), "special file")
    return f"{kind}: not a regular file, not read"


def signature(st: os.stat_result) -> Signature:
    """What identifies one state of an entry: a problem met again with the same signature is the same problem."""
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class NasUnavailableError(OSError):
    """The NAS root itself cannot be read: nothing below it can be judged present or absent."""


class FileEntry(NamedTuple):
    """One included regular file as seen at scan time (a tuple: a scan makes one per file, cheaply)."""

    nas_path: str  # absolute on the NAS, e.g. /sequencers/incoming/miseq/run/RunInfo.xml
    key: str  # object key (see object_key)
    source: str  # what to open, relative to the NAS root (a followed link's target)
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int
    mode: int = 0o100644
    uid: int = 0
    gid: int = 0
    atime_ns: int = 0

    def same_as(self, st: os.stat_result) -> bool:
        """True if ``st`` describes the very content this entry was scanned with."""
        return (
            st.st_size == self.size
            and st.st_mtime_ns == self.mtime_ns
            and st.st_ctime_ns == self.ctime_ns
            and st.st_ino == self.ino
        )

    @property
    def identity(self) -> Signature:
        return (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)


@dataclass(frozen=True, slots=True)
class ScanFailure:
    nas_path: str
    reason: str
    signature: Signature | None = None


Candidate = tuple[FileEntry, IndexedFile | None]


@dataclass(slots=True)
class FolderScan:
    """What one folder held: counts of every included regular file, and the files that are not unchanged.

    A folder comes before everything below it, so whoever reads a walk in order knows a folder's siblings and
    ancestors when it reads the folder (the order finality rules rely on).
    """

    nas_path: str  # '' for the NAS root
    key: str
    files: int = 0  # included regular files here
    bytes: int = 0
    unchanged: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    failures: list[ScanFailure] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)  # regular files here named as a watched name
    subfolders: list[str] = field(default_factory=list)  # names of folders walked below
    names: list[str] | None = None  # every regular file's name, when the folder was looked up row by row
    digest: int | None = None  # the listing's digest, when the folder can take the fast path
    settled: bool = False  # the index held that digest: nothing was looked up
    writes: tuple[int, int] = (0, 0)  # the index's write count of the folder when its rows were read


@dataclass(slots=True)
class ScanResult:
    """A whole walk collected (tests and small scans; the engine streams :meth:`Scanner.walk` instead)."""

    files: list[FileEntry] = field(default_factory=list)
    failures: list[ScanFailure] = field(default_factory=list)
    unchanged: int = 0
    known: dict[str, IndexedFile] = field(default_factory=dict)


def entry_from_stat(nas_path: str, key: str, source: str, st: os.stat_result) -> FileEntry:
    return FileEntry(
        nas_path,
        key,
        source,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_dev,
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


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class Scanner:
    """Scans the included part of the NAS; safe to run in a worker thread."""

    def __init__(self, nas_root: Path, *, follow_symlinks: bool = False, allowed_roots: Sequence[str] = ("/",)) -> None:
        self.root = os.path.realpath(nas_root)
        self._follow = follow_symlinks
        # A link is followed only to a target under one of these, resolved as the kernel would resolve them.
        self._allowed = [os.path.realpath(os.path.join(self.root, r.lstrip("/"))) for r in allowed_roots]

    def walk(
        self, matcher: Matcher, index: IndexReader | None = None, watched: frozenset[str] = frozenset()
    ) -> Iterator[FolderScan]:
        """Each folder the patterns reach, parents before children. With ``index``, files whose row says they are
        unchanged are only counted; without, every included file is a candidate. Raises NasUnavailableError at
        once if the NAS root itself cannot be read."""
        self.check_root()
        return _Walk(self, matcher, index, watched).run()

    def check_root(self) -> None:
        """Raise NasUnavailableError unless the NAS root can be read."""
        try:
            os.stat(self.root)
        except OSError as exc:  # not one missing file: the whole NAS is gone (unmounted, unreachable)
            raise NasUnavailableError(f"NAS root {self.root} is not available: {describe_os_error(exc)}") from exc

    def scan(self, matcher: Matcher, index: IndexReader | None = None) -> ScanResult:
        result = ScanResult()
        for folder in self.walk(matcher, index):
            result.failures.extend(folder.failures)
            result.unchanged += folder.unchanged
            for entry, known in folder.candidates:
                result.files.append(entry)
                if known is not None:
                    result.known[entry.key] = known
        result.files.sort()
        return result

    def allows(self, target: str) -> bool:
        return _under(target, self.root) and any(_under(target, allowed) for allowed in self._allowed)

    @property
    def follow_symlinks(self) -> bool:
        return self._follow


def _plain(text: str) -> bool:
    """True if ``text`` is its own key and no escaped key can equal it (no '%')."""
    return text.isascii() and text.isprintable() and "%" not in text


class _Walk:
    """The state of one scan: what is left to visit, which folders were already seen, the folder being listed."""

    def __init__(self, scanner: Scanner, matcher: Matcher, index: IndexReader | None, watched: frozenset[str]) -> None:
        self.scanner = scanner
        self.root = scanner.root
        self.matcher = matcher
        self.index = index
        self.watched = watched
        # (folder on this host, the same relative to the NAS root, its NAS path, its key, all below it is included)
        self.stack: list[tuple[str, str, str, str, bool]] = []
        self.visited: set[tuple[int, int]] = set()
        self.current = FolderScan("", "")
        self.others: list[FileEntry] = []  # files reached through visit(): partly included folders, followed links
        self.below: list[tuple[str, tuple[str, str, str, str, bool]]] = []  # (key, stack item) of subfolders

    def run(self) -> Iterator[FolderScan]:
        root_st = os.stat(self.root)
        self.visited.add((root_st.st_dev, root_st.st_ino))
        self.stack.append((self.root, "", "", "", self.matcher.matches("/")))
        while self.stack:
            yield self.list_folder(*self.stack.pop())

    def list_folder(self, folder: str, relative: str, nas_folder: str, key_folder: str, all_in: bool) -> FolderScan:
        scan = self.current = FolderScan(nas_folder, key_folder)
        self.others = []
        self.below = []
        try:
            with os.scandir(folder) as entries:
                listing = list(entries)
        except OSError as exc:
            self.fail(nas_folder or "/", f"folder unreadable: {describe_os_error(exc)}")
            return scan
        prefix = f"{relative}/" if relative else ""
        key_prefix = f"{key_folder}/" if key_folder else ""
        # The fast path: a folder entirely included whose names are all their own keys. Its listing hashes to a
        # digest; when the index holds the digest from a pass that found every one of these files unchanged,
        # nothing else is needed (the index drops a folder's digest whenever a row of the folder changes).
        regular: list[os.DirEntry[str]] = []
        digest = 0
        size = 0
        for entry in listing:
            if all_in and entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)  # kept by the entry: the slow path reuses it
                except OSError as exc:
                    self.fail(f"{nas_folder}/{entry.name}", describe_os_error(exc))
                    continue
                regular.append(entry)
                size += st.st_size
                digest += hash((entry.name, st.st_size, st.st_mtime_ns, st.st_ino))
                continue
            name = entry.name
            self.visit(entry, prefix + name, f"{nas_folder}/{name}", key_prefix + escape_name(name), all_in)
        self.push_subfolders()
        names = [entry.name for entry in regular]
        if self.watched:
            scan.markers.extend(sorted(self.watched.intersection(names)))
        scan.files = len(regular) + len(self.others)
        scan.bytes = size + sum(e.size for e in self.others)
        # The fast path: a folder entirely included whose names are all their own keys (checked for the whole
        # folder at once). Its listing hashes to a digest; when the index holds the digest from a pass that found
        # every one of these files unchanged, nothing else is needed (the index drops a folder's digest whenever a
        # row of the folder changes).
        joined = "/".join(names)
        plain = (
            all_in
            and not self.others
            and _plain(key_folder)
            and _plain(joined)
            and max(map(len, names), default=0) <= MAX_KEY_BYTES - len(key_prefix)
        )
        index = self.index
        if plain and index is not None:
            scan.digest = digest = digest & DIGEST_MASK
            if index.digest(key_folder) == digest:
                scan.settled = True
                scan.unchanged = len(regular)
                return scan
        if plain and index is not None and key_prefix and len(regular) >= RANGE_READ_MIN:
            # Row by row, but cheaply: the folder's rows in one range read, each file compared with its row from
            # the stat the walk already has; entries are built only for the files that are not unchanged.
            scan.writes = index.writes(key_folder)
            scan.names = names
            rows = index.folder_rows(key_prefix, [key for key, _ in self.below])
            for entry in regular:
                st = entry.stat(follow_symlinks=False)
                name = entry.name
                stored = rows.get(name)
                if (
                    stored is not None
                    and stored[0] == st.st_size
                    and stored[1] == st.st_mtime_ns
                    and stored[2] in (None, st.st_ino)
                ):
                    scan.unchanged += 1
                    continue
                file = entry_from_stat(f"{nas_folder}/{name}", key_prefix + name, prefix + name, st)
                scan.candidates.append((file, IndexedFile(*stored) if stored is not None else None))
            scan.candidates.sort()
            return scan
        found = self.others
        for entry in regular:
            name = entry.name
            st = entry.stat(follow_symlinks=False)
            key = key_prefix + name if _plain(name) else key_prefix + escape_name(name)
            nas_path = f"{nas_folder}/{name}"
            if len(key) > MAX_KEY_BYTES // 4 and len(key.encode()) > MAX_KEY_BYTES:
                self.fail(nas_path, KEY_TOO_LONG, signature(st))
                continue
            found.append(entry_from_stat(nas_path, key, prefix + name, st))
        found = self.refuse_collisions(found)
        scan.names = names
        known: dict[str, IndexedFile] = {}
        if index is not None:
            scan.writes = index.writes(key_folder)
            if found:
                known = index.lookup([file.key for file in found])
        for file in found:
            row = known.get(file.key)
            if row is not None and is_unchanged(row, file.size, file.mtime_ns, file.ino):
                scan.unchanged += 1
            else:
                scan.candidates.append((file, row))
        scan.candidates.sort()
        return scan

    def fail(self, nas_path: str, reason: str, sig: Signature | None = None) -> None:
        self.current.failures.append(ScanFailure(nas_path, reason, sig))

    def visit(self, entry: os.DirEntry[str], relative: str, nas_path: str, key: str, all_in: bool) -> None:
        included = all_in or self.matcher.matches(nas_path)
        try:
            if entry.is_symlink():
                self.visit_symlink(entry, nas_path, key, included, all_in)
            elif entry.is_dir(follow_symlinks=False):
                self.descend(entry.path, relative, nas_path, key, all_in=all_in, st=entry.stat(follow_symlinks=False))
            elif included:
                st = entry.stat(follow_symlinks=False)
                self.add_file(nas_path, key, relative, st)
        except OSError as exc:
            if included:
                self.fail(nas_path, describe_os_error(exc))

    def add_file(self, nas_path: str, key: str, relative: str, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            self.fail(nas_path, special_reason(st.st_mode), signature(st))
            return
        if len(key.encode()) > MAX_KEY_BYTES:
            self.fail(nas_path, KEY_TOO_LONG, signature(st))
            return
        self.others.append(entry_from_stat(nas_path, key, relative, st))
        if nas_path.rpartition("/")[2] in self.watched:
            self.current.markers.append(nas_path.rpartition("/")[2])

    def visit_symlink(self, entry: os.DirEntry[str], nas_path: str, key: str, included: bool, all_in: bool) -> None:
        if not (included or self.matcher.may_contain(nas_path)):
            return
        link_st = entry.stat(follow_symlinks=False)
        if not self.scanner.follow_symlinks:
            self.fail(nas_path, SYMLINK_NOT_FOLLOWED, signature(link_st))
            return
        try:
            target = os.path.realpath(entry.path, strict=True)
            st = os.stat(target)
        except OSError as exc:
            self.fail(nas_path, f"{SYMLINK_UNRESOLVABLE}: {describe_os_error(exc)}", signature(link_st))
            return
        if not self.scanner.allows(target):
            self.fail(nas_path, SYMLINK_ESCAPE, signature(link_st))
            return
        relative = os.path.relpath(target, self.root)
        if stat.S_ISDIR(st.st_mode):
            self.descend(target, relative, nas_path, key, all_in=all_in, st=st)
        elif included:
            self.add_file(nas_path, key, relative, st)

    def descend(self, folder: str, relative: str, nas_path: str, key: str, *, all_in: bool, st: os.stat_result) -> None:
        if not (all_in or self.matcher.may_contain(nas_path)):
            return
        if len(key.encode()) + 2 > MAX_KEY_BYTES:
            # Nothing below can be a key: report the folder once instead of every file (or walking on forever).
            self.fail(nas_path, KEY_TOO_LONG, signature(st))
            return
        identity = (st.st_dev, st.st_ino)
        if identity in self.visited:
            return
        self.visited.add(identity)
        self.below.append((key, (folder, relative, nas_path, key, all_in or self.matcher.matches(nas_path))))

    def push_subfolders(self) -> None:
        """Queue the folders below, but not two whose keys collide (neither is walked: each is reported once)."""
        below = self.below
        clashing = _clashing(key for key, _ in below if "%" in key)
        for key, item in reversed(below):
            if key in clashing:
                self.fail(item[2], KEY_COLLISION)
                continue
            self.current.subfolders.append(item[2].rpartition("/")[2])
            self.stack.append(item)

    def refuse_collisions(self, entries: list[FileEntry]) -> list[FileEntry]:
        """Two names of one folder whose keys are equal once escaped: both reported, neither shipped. (Keys are
        escaped name by name, so two equal keys always meet first as two names in one folder.)"""
        clashing = _clashing(entry.key for entry in entries if "%" in entry.key)
        if not clashing:
            return entries
        kept = []
        for entry in entries:
            if entry.key in clashing:
                self.fail(entry.nas_path, KEY_COLLISION, (entry.dev, entry.ino, entry.size, entry.mtime_ns))
            else:
                kept.append(entry)
        return kept


def _clashing(keys: Iterable[str]) -> set[str]:
    counts = Counter(keys)
    return {key for key, count in counts.items() if count > 1}
