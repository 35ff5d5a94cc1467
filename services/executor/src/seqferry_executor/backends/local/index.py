"""The persistent change index: what was last uploaded and verified, per object key (sqlite, stdlib).

Memory does not grow with the number of files. Rows live in sqlite; what stays in memory is one 64-bit digest
per folder whose every file was found unchanged (see ``scan``): a folder whose listing hashes to the digest it had
then holds exactly those files, so a no-change pass costs one ``stat`` per file and no row lookup, whatever the
count. Any other folder looks its files' rows up in bulk (one query per few hundred keys), and a row written for a
key drops the digest of its folder. Digests are keyed with the process's own hash seed and kept only in memory: a
restarted engine looks every folder up once, then stores their digests again.

Rows are written in batches; losing the last batch to a crash would mean those files are uploaded once more, so
the keys a pass is about to upload are noted first (``intents``, a chunk per transaction) and a restart asks S3
about the ones left noted (see ``Engine.reconcile_intents``). Multipart uploads in progress are recorded *before*
they start (``inflight``), so a restart can abort the parts a killed process left behind.

When the index is missing (or belongs to another bucket) it is rebuilt from a listing of the bucket: the
listing gives sizes but not source mtimes, so rebuilt rows carry ``mtime_ns = None`` and a pass confirms such a
file with one HeadObject (its recorded modification time, ``file-mtime`` as DataSync writes it) the first time it
sees it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER,
    ino INTEGER,
    checksum TEXT,
    etag TEXT,
    recorded_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inflight (key TEXT PRIMARY KEY, started_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intents (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

_UPSERT = (
    "INSERT INTO files (key, size, mtime_ns, ino, checksum, etag, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, ino=excluded.ino, "
    "checksum=excluded.checksum, etag=excluded.etag, recorded_at=excluded.recorded_at"
)


LOOKUP_BATCH = 500  # keys per query (well under sqlite's bound parameters)
Row = tuple[int, int | None, int | None, str | None, str | None]  # size, mtime_ns, ino, checksum, etag


class ChangeIndexError(Exception):
    """The change index cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class IndexedFile:
    size: int
    mtime_ns: int | None
    ino: int | None = None
    checksum: str | None = None
    etag: str | None = None


def is_unchanged(row: IndexedFile, size: int, mtime_ns: int, ino: int) -> bool:
    """True if the file is what the row recorded: same size and modification time, same inode where recorded."""
    return row.size == size and row.mtime_ns == mtime_ns and (row.ino is None or row.ino == ino)


def folder_of(key: str) -> str:
    """The folder part of an object key ('' at the top)."""
    return key.rpartition("/")[0]


class ChangeIndex:
    """Rows in sqlite, per-folder digests in memory. Written from one thread (the engine's event loop); read in
    bulk from any thread (each reading thread gets its own connection, see :meth:`reader`)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, rebuild_needed: bool) -> None:
        self._conn = conn
        self._path = path
        # Rows recorded but not yet committed; None marks a row to delete. Readers consult it before sqlite.
        self._dirty: dict[str, IndexedFile | None] = {}
        self._flushing: dict[str, IndexedFile | None] = {}
        self._digests: dict[str, int] = {}
        # Rows written per folder (and rebuilds): a digest is stored only if the folder's rows are still those its
        # listing was compared with, give or take the writes of whoever stores it.
        self._writes: dict[str, int] = {}
        self._epoch = 0
        self.rebuild_needed = rebuild_needed

    @classmethod
    def open(cls, path: Path, destination: str) -> ChangeIndex:
        """Open (creating) the index for ``destination`` (endpoint and bucket); blocking, run it in a thread."""
        existed = path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE name = 'destination'").fetchone()
            rebuild_needed = not existed or row is None or row[0] != destination
            if rebuild_needed:
                conn.execute("DELETE FROM files")
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('destination', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                    (destination,),
                )
        except sqlite3.Error as exc:
            raise ChangeIndexError(f"cannot open change index {path}: {exc}") from exc
        return cls(conn, path, rebuild_needed=rebuild_needed)

    # -- reading ---------------------------------------------------------------------------------------------

    def get(self, key: str) -> IndexedFile | None:
        """The row of one key (from the event loop's thread)."""
        return self.rows([key], self._conn).get(key)

    def lookup(self, keys: Iterable[str]) -> dict[str, IndexedFile]:
        """Rows of many keys at once (from the event loop's thread); keys without a row are absent."""
        return self.rows(list(keys), self._conn)

    @property
    def path(self) -> Path:
        return self._path

    def reader(self) -> IndexReader:
        """A reader for another thread (a scan): its own sqlite connection, closed with the reader."""
        return IndexReader(self)

    def __len__(self) -> int:
        self.flush()
        return int(self._conn.execute("SELECT count(*) FROM files").fetchone()[0])

    def keys(self) -> list[str]:
        self.flush()
        return [row[0] for row in self._conn.execute("SELECT key FROM files ORDER BY key")]

    def rows(self, keys: list[str], conn: sqlite3.Connection) -> dict[str, IndexedFile]:
        found: dict[str, IndexedFile] = {}
        missing: list[str] = []
        dirty, flushing = self._dirty, self._flushing
        for key in keys:
            if key in dirty:
                row = dirty.get(key)
            elif key in flushing:
                row = flushing.get(key)
            else:
                missing.append(key)
                continue
            if row is not None:
                found[key] = row
        for start in range(0, len(missing), LOOKUP_BATCH):
            batch = missing[start : start + LOOKUP_BATCH]
            marks = ",".join("?" * len(batch))
            query = f"SELECT key, size, mtime_ns, ino, checksum, etag FROM files WHERE key IN ({marks})"  # noqa: S608 - placeholders only
            try:
                for key, size, mtime_ns, ino, checksum, etag in conn.execute(query, batch):
                    found[key] = IndexedFile(size, mtime_ns, ino, checksum, etag)
            except sqlite3.Error as exc:
                raise ChangeIndexError(f"change index read failed: {exc}") from exc
        return found

    def dirty_rows(self) -> list[tuple[str, IndexedFile | None]]:
        """Rows recorded and not yet written (a snapshot taken in one step: safe to read from another thread)."""
        return list(self._dirty.items())

    def flushing_rows(self) -> list[tuple[str, IndexedFile | None]]:
        """Rows being written (a snapshot, as :meth:`dirty_rows`)."""
        return list(self._flushing.items())

    # -- folder digests --------------------------------------------------------------------------------------

    def digest(self, folder: str) -> int | None:
        return self._digests.get(folder)

    def writes(self, folder: str) -> tuple[int, int]:
        """How often ``folder``'s rows were written: take it before reading them, for :meth:`set_digest`."""
        return self._epoch, self._writes.get(folder, 0)

    def set_digest(self, folder: str, digest: int, writes: tuple[int, int], own: int = 0) -> None:
        """Remember that ``folder``'s listing hashing to ``digest`` matches its rows: those read when the folder had
        had ``writes``, plus the ``own`` rows the caller wrote since. Refused if anyone else wrote meanwhile."""
        epoch, count = writes
        if epoch == self._epoch and self._writes.get(folder, 0) == count + own:
            self._digests[folder] = digest

    @property
    def digests(self) -> int:
        return len(self._digests)

    # -- writing ---------------------------------------------------------------------------------------------

    def record(self, key: str, entry: IndexedFile) -> None:
        self._dirty[key] = entry
        self._touch(key)

    def forget(self, key: str) -> None:
        self._dirty[key] = None
        self._touch(key)

    def _touch(self, key: str) -> None:
        folder = folder_of(key)
        self._writes[folder] = self._writes.get(folder, 0) + 1
        self._digests.pop(folder, None)

    @property
    def pending_writes(self) -> int:
        return len(self._dirty)

    def flush(self) -> None:
        """Write what was recorded since the last flush; on failure it stays pending for the next one."""
        if not self._dirty:
            return
        self._flushing, self._dirty = self._dirty, {}
        now = time.time()
        flushing = self._flushing
        upserts = [
            (key, e.size, e.mtime_ns, e.ino, e.checksum, e.etag, now) for key, e in flushing.items() if e is not None
        ]
        deletes = [(key,) for key, e in flushing.items() if e is None]
        try:
            with self._transaction():
                self._conn.executemany(_UPSERT, upserts)
                self._conn.executemany("DELETE FROM files WHERE key = ?", deletes)
                self._conn.executemany("DELETE FROM intents WHERE key = ?", ((u[0],) for u in upserts))
        except ChangeIndexError:
            # Keep the rows for the next flush (newer ones recorded meanwhile win).
            self._dirty = {**flushing, **self._dirty}
            raise
        finally:
            self._flushing = {}

    def replace_all(self, rows: Iterable[tuple[str, IndexedFile]]) -> int:
        """Replace every row (a rebuild from the bucket); rows recorded meanwhile and not yet written win."""
        recorded = {key: entry for key, entry in self._dirty.items() if entry is not None}
        now = time.time()
        with self._transaction():
            self._conn.execute("DELETE FROM files")
            self._conn.executemany(
                _UPSERT, ((k, e.size, e.mtime_ns, e.ino, e.checksum, e.etag, now) for k, e in rows if k not in recorded)
            )
        self._digests.clear()
        self._epoch += 1
        self.flush()
        self.rebuild_needed = False
        return int(self._conn.execute("SELECT count(*) FROM files").fetchone()[0])

    def mark_inflight(self, key: str) -> None:
        """Durably note a multipart upload about to start (before any part is sent)."""
        with self._transaction():
            self._conn.execute(
                "INSERT INTO inflight (key, started_at) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET started_at=excluded.started_at",
                (key, time.time()),
            )

    def clear_inflight(self, key: str) -> None:
        with self._transaction():
            self._conn.execute("DELETE FROM inflight WHERE key = ?", (key,))

    def inflight(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT key FROM inflight ORDER BY key")]

    def note_intents(self, keys: Iterable[str]) -> None:
        """Durably note keys about to be uploaded (one transaction); recording a key in the index clears it."""
        with self._transaction():
            self._conn.executemany("INSERT OR IGNORE INTO intents (key) VALUES (?)", ((k,) for k in keys))

    def clear_intents(self, keys: Iterable[str]) -> None:
        with self._transaction():
            self._conn.executemany("DELETE FROM intents WHERE key = ?", ((k,) for k in keys))

    def intents(self) -> list[str]:
        """Keys noted for upload and never recorded: a pass was interrupted while they were in flight."""
        return [row[0] for row in self._conn.execute("SELECT key FROM intents ORDER BY key")]

    def close(self) -> None:
        self.flush()
        self._conn.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class IndexReader:
    """Bulk row lookups from a scan's worker thread, over a connection of its own (WAL: readers never block)."""

    def __init__(self, index: ChangeIndex) -> None:
        self._index = index
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> IndexReader:
        try:
            self._conn = sqlite3.connect(f"file:{self._index.path}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ChangeIndexError(f"cannot read change index: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()

    def digest(self, folder: str) -> int | None:
        return self._index.digest(folder)

    def writes(self, folder: str) -> tuple[int, int]:
        return self._index.writes(folder)

    def lookup(self, keys: list[str]) -> dict[str, IndexedFile]:
        assert self._conn is not None
        return self._index.rows(keys, self._conn)

    def folder_rows(self, prefix: str, skip: Iterable[str] = ()) -> dict[str, Row]:
        """The rows of the files directly in one folder (keys ``prefix`` + a name without '/'), by name: one range
        read instead of one lookup per key. ``prefix`` ends with '/'; ``skip`` are the keys of the folder's subfolders,
        whose rows are not read at all (the range is cut around each)."""
        assert self._conn is not None
        # Rows not yet written, taken before reading sqlite: a row leaves ``dirty`` for ``flushing`` and leaves
        # ``flushing`` only once committed, so each row recorded by now is in one of the two or in what sqlite reads.
        dirty = self._index.dirty_rows()
        flushing = self._index.flushing_rows()
        cut = len(prefix) + 1
        bounds = [prefix]
        for below in sorted(key + "/" for key in skip):  # by the ranges' starts (disjoint: each is one prefix)
            bounds += [below, below[:-1] + "0"]  # '0' follows '/': every key below the subfolder lies between
        bounds.append(prefix[:-1] + "0")
        query = (
            "SELECT substr(key, ?), size, mtime_ns, ino, checksum, etag FROM files "
            "WHERE key >= ? AND key < ? AND instr(substr(key, ?), '/') = 0"
        )
        found: dict[str, Row] = {}
        try:
            for low, high in zip(bounds[::2], bounds[1::2], strict=True):
                found.update((row[0], row[1:]) for row in self._conn.execute(query, (cut, low, high, cut)))
        except sqlite3.Error as exc:
            raise ChangeIndexError(f"change index read failed: {exc}") from exc
        start = len(prefix)
        for pending in (flushing, dirty):
            for key, entry in pending:
                if key.startswith(prefix) and "/" not in key[start:]:
                    if entry is None:
                        found.pop(key[start:], None)
                    else:
                        found[key[start:]] = (entry.size, entry.mtime_ns, entry.ino, entry.checksum, entry.etag)
        return found


class _Transaction:
    """BEGIN … COMMIT (ROLLBACK on error); any sqlite failure surfaces as ChangeIndexError (e.g. a full volume)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        try:
            self._conn.execute("BEGIN")
        except sqlite3.Error as err:
            raise ChangeIndexError(f"change index write failed: {err}") from err

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error as err:
            raise ChangeIndexError(f"change index write failed: {err}") from err
        if isinstance(exc, sqlite3.Error):
            raise ChangeIndexError(f"change index write failed: {exc}") from exc
