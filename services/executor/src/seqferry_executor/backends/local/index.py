"""The persistent change index: what was last uploaded and verified, per object key (sqlite, stdlib).

A pass decides *unchanged* from memory (the whole index is loaded once), so a file that did not change costs
a ``stat`` and a dict lookup, never a request. Rows are written in batches; losing the last batch to a crash
would mean those files are uploaded once more, so the keys a pass is about to upload are noted first
(``intents``, a chunk per transaction) and a restart asks S3 about the ones left noted (see
``Engine.reconcile_intents``). Multipart uploads in progress are recorded *before* they start (``inflight``), so
a restart can abort the parts a killed process left behind.

When the index is missing (or belongs to another bucket) it is rebuilt from a listing of the bucket: the
listing gives sizes but not source mtimes, so rebuilt rows carry ``mtime_ns = None`` and a pass confirms such a
file with one HeadObject (its recorded modification time, ``file-mtime`` as DataSync writes it) the first time it
sees it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
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


class ChangeIndexError(Exception):
    """The change index cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class IndexedFile:
    size: int
    mtime_ns: int | None
    ino: int | None = None
    checksum: str | None = None
    etag: str | None = None


class ChangeIndex:
    """Loaded once, consulted in memory, persisted in batches; used from one thread. Not shared between processes."""

    def __init__(self, conn: sqlite3.Connection, entries: dict[str, IndexedFile], *, rebuild_needed: bool) -> None:
        self._conn = conn
        self._entries = entries
        self._dirty: dict[str, IndexedFile | None] = {}
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
            entries = {
                key: IndexedFile(size, mtime_ns, ino, checksum, etag)
                for key, size, mtime_ns, ino, checksum, etag in conn.execute(
                    "SELECT key, size, mtime_ns, ino, checksum, etag FROM files"
                )
            }
        except sqlite3.Error as exc:
            raise ChangeIndexError(f"cannot open change index {path}: {exc}") from exc
        return cls(conn, entries, rebuild_needed=rebuild_needed)

    @property
    def entries(self) -> Mapping[str, IndexedFile]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, key: str, entry: IndexedFile) -> None:
        self._entries[key] = entry
        self._dirty[key] = entry

    def forget(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self._dirty[key] = None

    @property
    def pending_writes(self) -> int:
        return len(self._dirty)

    def flush(self) -> None:
        """Write what was recorded since the last flush; on failure it stays pending for the next one."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        now = time.time()
        upserts = [
            (key, e.size, e.mtime_ns, e.ino, e.checksum, e.etag, now) for key, e in dirty.items() if e is not None
        ]
        deletes = [(key,) for key, e in dirty.items() if e is None]
        try:
            with self._transaction():
                self._conn.executemany(_UPSERT, upserts)
                self._conn.executemany("DELETE FROM files WHERE key = ?", deletes)
                self._conn.executemany("DELETE FROM intents WHERE key = ?", ((u[0],) for u in upserts))
        except ChangeIndexError:
            self._dirty = dirty | self._dirty
            raise

    def replace_all(self, rows: Iterable[tuple[str, IndexedFile]]) -> int:
        """Replace every row (a rebuild from the bucket); entries recorded meanwhile by a pass win."""
        fresh = dict(rows)
        fresh.update({k: v for k, v in self._dirty.items() if v is not None})
        with self._transaction():
            self._conn.execute("DELETE FROM files")
            now = time.time()
            self._conn.executemany(
                _UPSERT,
                ((k, e.size, e.mtime_ns, e.ino, e.checksum, e.etag, now) for k, e in fresh.items()),
            )
        self._dirty.clear()
        self._entries.clear()
        self._entries.update(fresh)
        self.rebuild_needed = False
        return len(fresh)

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
