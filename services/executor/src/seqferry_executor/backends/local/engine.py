"""One pass of the local engine: PREPARING (scan, plan) → TRANSFERRING (upload, verify) → VERIFYING → SUCCESS/ERROR.

The walk runs in a worker thread a few folders ahead of the uploads, and each folder's files are planned (``plan``,
``finality``) and sent while the walk goes on, so memory stays bounded whatever the number of files. Completion
markers wait for the end of the pass; before it, the pass watches files it may send soon (``_Pass.linger``).

Each file is uploaded from a descriptor opened without following links and checked against the scan (see
``source``). Verification happens right after the upload: S3 has already checked the checksum computed while
reading; the engine then ``fstat``s the descriptor it read from and counts the file verified only if size, mtime,
ctime and inode are still those it was scanned with. A file that changed meanwhile (or since the scan) is not
verified, is not recorded in the change index, and so is shipped again by a later pass once it is stable.

Entries that cannot be transferred (links not followed, special files, unreadable files, ...) are per-file
problems: counted in ``files_failed``, listed with their reason, and the rest of the pass goes on. A pass ends in
ERROR when it met a problem no earlier pass reported in the same form (same entry, same state, same reason); a
problem that merely stands (the FIFO is still there) keeps being counted and listed, but later passes end in
SUCCESS, so a pass every few seconds does not announce the same failure forever. The run keeps its failed count,
so it is never announced complete while a problem stands. The memory is this process's: after a restart each
standing problem is reported as an ERROR once more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seqferry_executor.backends.local.config import LocalBackendConfig
from seqferry_executor.backends.local.finality import RunFolders, complete
from seqferry_executor.backends.local.index import ChangeIndex, ChangeIndexError, IndexedFile, folder_of
from seqferry_executor.backends.local.plan import RunBook, StabilityTracker, Timing, make_plan, quiet_for
from seqferry_executor.backends.local.posix_metadata import metadata_for, mtime_ns_of
from seqferry_executor.backends.local.scan import (
    FileEntry,
    FolderScan,
    NasUnavailableError,
    Scanner,
    Signature,
    entry_from_stat,
    original_path,
    shown,
)
from seqferry_executor.backends.local.source import OpenSource, SourceError, SourceRoot
from seqferry_executor.backends.local.transferlog import ExecutionLog, NoLog, TransferLog
from seqferry_executor.backends.local.uploader import CrtUploader, UploadError
from seqferry_shared.events.models import Counters, ErrorInfo, FileProblem, RunSummary, TransferState
from seqferry_shared.patterns import Matcher
from seqferry_shared.resources import ADHOC_PREFIX, STORAGE_CLASS_TAG, object_class
from seqferry_shared.sequencers import ALL_MARKERS, SequencerPath

log = logging.getLogger(__name__)

ORIGINAL_PATH_METADATA = "seqferry-nas-path"
FLUSH_EVERY_S = 0.25
FLUSH_EVERY_ROWS = 1000
# Problems remembered between passes (entries, not bytes); the oldest are forgotten first.
KNOWN_PROBLEMS_KEPT = 100_000
# Keys are noted as upload intents this many at a time, just before workers take them.
INTENT_CHUNK = 256
# Folders the walk may run ahead of the uploads.
LOOKAHEAD_FOLDERS = 16
# Pending files a pass keeps an eye on while it lingers, and how often it looks.
WATCH_MAX = 10_000
LINGER_POLL_S = 0.05


@dataclass(slots=True)
class Execution:
    """Live state of one execution, read by ``describe``."""

    id: str
    task: str
    includes: tuple[str, ...]
    state: TransferState = TransferState.QUEUED
    counters: Counters = field(default_factory=Counters)
    runbook: RunBook | None = None
    error: ErrorInfo | None = None
    problems: list[FileProblem] = field(default_factory=list)
    met: dict[str, tuple[str, Signature | None]] = field(default_factory=dict)
    new_problems: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    log: ExecutionLog = field(default_factory=NoLog)

    def runs(self) -> list[RunSummary]:
        return self.runbook.summaries() if self.runbook is not None else []


class Engine:
    """Everything passes share: the index, the native uploader, the control-plane client, stability memory."""

    def __init__(
        self,
        *,
        config: LocalBackendConfig,
        scanner: Scanner,
        index: ChangeIndex,
        uploader: CrtUploader,
        s3: Any,
        bucket: str,
        sequencers: Sequence[SequencerPath],
        adhoc_prefixes: tuple[str, ...] = (ADHOC_PREFIX,),
        transfer_log: TransferLog | None = None,
    ) -> None:
        self._config = config
        self._scanner = scanner
        self._index = index
        self._uploader = uploader
        self._s3 = s3
        self._bucket = bucket
        self._sequencers = list(sequencers)
        self._adhoc_prefixes = adhoc_prefixes
        self._transfer_log = transfer_log or TransferLog(None, "")
        self._tracker = StabilityTracker()
        self._busy: set[str] = set()
        self._last_flush = time.monotonic()
        self._known: OrderedDict[str, tuple[str, Signature | None]] = OrderedDict()

    # -- start-up work ---------------------------------------------------------------------------------------

    async def rebuild_index(self, prefixes: Iterable[str]) -> int:
        """Refill the index from a listing of the bucket under ``prefixes`` (sizes only; see index module)."""
        rows: list[tuple[str, IndexedFile]] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for prefix in sorted(set(prefixes)):
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    rows.append((obj["Key"], IndexedFile(size=obj["Size"], mtime_ns=None, etag=obj.get("ETag"))))
        count = await asyncio.to_thread(self._index.replace_all, rows)
        log.info("change index rebuilt from s3://%s: %d objects", self._bucket, count)
        return count

    async def abort_stranded_uploads(self) -> int:
        """Abort multipart uploads a killed process left behind (keys noted in the index before they started)."""
        aborted = 0
        for key in self._index.inflight():
            if key in self._busy:
                continue
            paginator = self._s3.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
                for upload in page.get("Uploads", ()):
                    if upload["Key"] == key:
                        await self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload["UploadId"])
                        aborted += 1
            self._index.clear_inflight(key)
        if aborted:
            log.warning("aborted %d multipart upload(s) left by an interrupted pass", aborted)
        return aborted

    async def reconcile_intents(self) -> int:
        """After an interrupted pass: record in the index the objects it uploaded without recording them.

        Those keys were noted as intents before their upload started. An object whose ``mtime-ns`` metadata and
        size are there is recorded as the file version it was uploaded from, so the next pass finds the file
        unchanged instead of uploading the same bytes again (a second object version). Returns the keys recorded.
        """
        keys = self._index.intents()
        if not keys:
            return 0
        semaphore = asyncio.Semaphore(self._config.rebuild_concurrency)
        recorded = 0

        async def confirm(key: str) -> None:
            nonlocal recorded
            async with semaphore:
                try:
                    head = await self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
                except ClientError:
                    return  # never arrived: it is uploaded again
            mtime = mtime_ns_of(head.get("Metadata", {}))
            if mtime is None:
                return
            known = self._index.get(key)
            if known is not None and known.mtime_ns == mtime and known.size == head.get("ContentLength"):
                return
            checksum = head.get(f"Checksum{self._config.checksum.upper()}")
            self._index.record(key, IndexedFile(int(head["ContentLength"]), mtime, None, checksum, head.get("ETag")))
            recorded += 1

        async with asyncio.TaskGroup() as group:
            for key in keys:
                group.create_task(confirm(key))
        self._index.flush()
        self._index.clear_intents(keys)
        if recorded:
            log.warning("recorded %d object(s) uploaded by an interrupted pass (not uploaded again)", recorded)
        return recorded

    # -- one pass --------------------------------------------------------------------------------------------

    async def run(self, execution: Execution) -> None:
        execution.log = self._transfer_log.open(execution.id)
        try:
            await self._run(execution)
        except asyncio.CancelledError:
            execution.state = TransferState.ERROR
            execution.error = ErrorInfo(code="Cancelled", message="the executor stopped during the pass")
            execution.finished_at = time.time()
            raise
        except Exception as exc:
            # The pass runs as a background task: whatever broke it must end as an ERROR status that
            # describe() reports, not as an exception nobody retrieves. Cancellation is not caught here.
            await execution.log.close()
            execution.state = TransferState.ERROR
            execution.error = _pass_error(exc)
            execution.finished_at = time.time()
            if execution.error.code == "InternalException":
                log.exception("local pass %s failed", execution.id)
            else:
                log.error("local pass %s failed: %s", execution.id, execution.error.message)
        finally:
            try:
                self._index.flush()
            except ChangeIndexError as exc:  # reported by the pass; the rows stay pending for the next flush
                log.warning("change index not written: %s", exc)

    async def _run(self, execution: Execution) -> None:
        execution.state = TransferState.PREPARING
        execution.runbook = RunBook(self._sequencers)
        self._scanner.check_root()
        try:
            sources = SourceRoot(self._scanner.root)
        except OSError:
            self._scanner.check_root()  # gone just now: NasUnavailableError
            raise
        work = _Pass(self, execution, sources)
        try:
            async with asyncio.TaskGroup() as group:
                work.group = group
                async for scan in self._walk(Matcher.of(execution.includes)):
                    await work.take(scan)
                await work.drain()
                await work.linger()
            await self._upload_markers(work)
        finally:
            work.close()
        execution.state = TransferState.VERIFYING
        self._index.flush()
        # Every upload of this pass ended: recorded (which cleared its intent) or deliberately not (changed, failed).
        work.clear_intents()
        self._remember(execution, work.seen_known)
        await execution.log.close()  # the pass ends once its transfer log is written
        self._finish(execution)

    async def _walk(self, matcher: Matcher) -> AsyncIterator[FolderScan]:
        """The scan, run in a worker thread at most LOOKAHEAD_FOLDERS folders ahead of the uploads."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[FolderScan | None] = asyncio.Queue()
        room = threading.Semaphore(LOOKAHEAD_FOLDERS)
        stop = threading.Event()

        def produce() -> None:
            try:
                with self._index.reader() as reader:
                    for scan in self._scanner.walk(matcher, reader, ALL_MARKERS):
                        while not room.acquire(timeout=0.2):
                            if stop.is_set():
                                return
                        if stop.is_set():
                            return
                        loop.call_soon_threadsafe(queue.put_nowait, scan)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        producer = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while (item := await queue.get()) is not None:
                room.release()
                yield item
            await producer  # what broke the walk, if anything, ends the pass in ERROR
        finally:
            stop.set()
            await asyncio.wait([producer])

    async def _upload_markers(self, work: _Pass) -> None:
        book = work.book
        ready = [marker for marker in work.markers if not book.blocked(marker)]
        for marker in work.markers:
            if marker not in ready:
                book.deferred(marker)
                self._unestimate(work.execution, marker)
                self._release(marker)
                work.unsettle(marker)
        work.markers = []
        if ready:
            work.note(ready)
            async with asyncio.TaskGroup() as group:
                for marker in ready:
                    group.create_task(self._upload_one(work, marker, when_full=False))

    async def _confirm(self, work: _Pass, entry: FileEntry) -> None:
        """A file known to the bucket but not to the index: one HeadObject says unchanged or ship."""
        try:
            try:
                head = await self._s3.head_object(Bucket=self._bucket, Key=entry.key, ChecksumMode="ENABLED")
            except ClientError:
                head = None
            # The object holds this very file if it records the same size and modification time, whether the
            # local engine or DataSync wrote it (see posix_metadata).
            same = (
                head is not None
                and head.get("ContentLength") == entry.size
                and mtime_ns_of(head.get("Metadata", {})) == entry.mtime_ns
            )
        except BaseException:
            self._release(entry)
            raise
        if not same:
            work.note([entry])
            await work.ship(entry, when_full=False)
            return
        assert head is not None
        checksum = head.get(f"Checksum{self._config.checksum.upper()}")
        self._index.record(entry.key, IndexedFile(entry.size, entry.mtime_ns, entry.ino, checksum, head.get("ETag")))
        work.settled(entry)
        counters = work.execution.counters
        counters.files_estimated -= 1
        counters.bytes_estimated -= entry.size
        counters.files_skipped += 1
        self._release(entry)

    async def _upload_one(self, work: _Pass, entry: FileEntry, *, when_full: bool) -> None:
        execution = work.execution
        book = work.book
        try:
            source = work.sources.open(entry)
        except SourceError as exc:
            self._release(entry)
            work.unsettle(entry)
            if exc.changed:
                log.info("%s changed since the scan: shipped when stable", entry.key)
                book.deferred(entry)
                self._unestimate(execution, entry)
                work.watch(entry, when_full=when_full)
            else:
                self._fail(execution, entry.nas_path, exc.reason, entry.identity)
                book.failed(entry)
            return
        try:
            if when_full and not complete(source.fd, entry):
                # Shorter than its own header says: the instrument is still writing it.
                self._release(entry)
                work.unsettle(entry)
                book.deferred(entry)
                self._unestimate(execution, entry)
                work.watch(entry, when_full=True, whole=False)
                return
            await self._upload_open(work, source, when_full)
        finally:
            source.close()

    async def _upload_open(self, work: _Pass, source: OpenSource, when_full: bool) -> None:
        entry = source.entry
        execution = work.execution
        counters = execution.counters
        book = work.book
        multipart = entry.size > self._config.multipart_threshold
        sent = 0

        def progress(amount: int) -> None:
            nonlocal sent
            amount = min(amount, entry.size - sent)
            sent += amount
            counters.bytes_transferred += amount

        klass = object_class(entry.key, self._adhoc_prefixes)
        metadata = metadata_for(entry)
        if entry.key != entry.nas_path[1:]:
            metadata[ORIGINAL_PATH_METADATA] = original_path(entry.nas_path)
        try:
            if multipart:
                self._index.mark_inflight(entry.key)
            result = await self._uploader.put(
                path=source.path,
                key=entry.key,
                size=entry.size,
                metadata=metadata,
                tags={STORAGE_CLASS_TAG: klass},
                on_progress=progress if multipart else None,
            )
            etag, checksum = result.etag, result.checksum
            if multipart:
                etag, checksum = await self._check_object(entry)
        except UploadError as exc:
            work.unsettle(entry)
            if not source.unchanged():
                log.info("%s changed during upload: not stored as verified, shipped again when stable", entry.key)
                execution.log.not_verified(
                    shown(entry.nas_path), "changed while it was uploaded; sent again when stable"
                )
                # Sent all the same (as DataSync counts bytes transferred): the write amplification shows it.
                counters.bytes_transferred += entry.size - sent
                book.deferred(entry)
                work.watch(entry, when_full=when_full)
                return
            self._fail(execution, entry.nas_path, exc.reason, entry.identity)
            book.failed(entry)
            return
        except (ClientError, BotoCoreError) as exc:
            work.unsettle(entry)
            self._fail(execution, entry.nas_path, f"object check after upload failed: {exc}"[:300], entry.identity)
            book.failed(entry)
            return
        finally:
            if multipart:
                self._index.clear_inflight(entry.key)
            self._release(entry)
        counters.files_transferred += 1
        counters.bytes_transferred += entry.size - sent
        book.transferred(entry)
        execution.log.transferred(shown(entry.nas_path), entry.size)
        self._verify(work, source, checksum, etag, when_full)
        self._maybe_flush()

    async def _check_object(self, entry: FileEntry) -> tuple[str | None, str | None]:
        """After a multipart upload: the object exists with the expected size; its checksum for the index."""
        head = await self._s3.head_object(Bucket=self._bucket, Key=entry.key, ChecksumMode="ENABLED")
        if head.get("ContentLength") != entry.size:
            raise UploadError(f"object size {head.get('ContentLength')} differs from the file's {entry.size}")
        return head.get("ETag"), head.get(f"Checksum{self._config.checksum.upper()}")

    def _verify(self, work: _Pass, source: OpenSource, checksum: str | None, etag: str | None, when_full: bool) -> None:
        entry = source.entry
        execution = work.execution
        book = work.book
        if not source.unchanged():
            log.info("%s changed during upload: not verified, shipped again when stable", entry.key)
            execution.log.not_verified(shown(entry.nas_path), "changed while it was uploaded; sent again when stable")
            work.unsettle(entry)
            book.deferred(entry)
            work.watch(entry, when_full=when_full)
            return
        self._index.record(entry.key, IndexedFile(entry.size, entry.mtime_ns, entry.ino, checksum, etag))
        work.settled(entry)
        execution.counters.files_verified += 1
        execution.counters.bytes_verified += entry.size
        book.verified(entry)
        execution.log.verified(shown(entry.nas_path), entry.size, self._config.checksum, checksum)

    @staticmethod
    def _unestimate(execution: Execution, entry: FileEntry) -> None:
        """A planned file this pass does not ship after all (a held-back marker, a file changed since the scan)."""
        execution.counters.files_estimated -= 1
        execution.counters.bytes_estimated -= entry.size

    def _fail(self, execution: Execution, nas_path: str, reason: str, sig: Signature | None = None) -> None:
        """Count and list one problem; it is new unless an earlier pass met it in the same form."""
        execution.counters.files_failed += 1
        fingerprint = (reason, sig)
        execution.met[nas_path] = fingerprint
        path = shown(nas_path)
        execution.log.failed(path, reason)
        if self._known.get(nas_path) != fingerprint:
            execution.new_problems += 1
            log.warning("file failed: %s: %s", path, reason)
        if len(execution.problems) < self._config.max_failures_reported:
            execution.problems.append(FileProblem(path=path, reason=reason))

    def _remember(self, execution: Execution, seen: list[str]) -> None:
        """Keep this pass's problems for the next passes; forget those of entries that are fine now."""
        for nas_path in seen:
            if nas_path not in execution.met:
                self._known.pop(nas_path, None)
        for nas_path, fingerprint in execution.met.items():
            self._known[nas_path] = fingerprint
            self._known.move_to_end(nas_path)
        while len(self._known) > KNOWN_PROBLEMS_KEPT:
            self._known.popitem(last=False)

    def _release(self, entry: FileEntry) -> None:
        self._busy.discard(entry.key)
        if self._tracker.first_seen:
            self._tracker.forget((entry.nas_path,))

    def _maybe_flush(self) -> None:
        # Synchronous on purpose: a batch is a few milliseconds (WAL, no fsync per commit), and keeping every
        # index access on the event loop's thread means no locking between passes.
        now = time.monotonic()
        if self._index.pending_writes >= FLUSH_EVERY_ROWS or now - self._last_flush >= FLUSH_EVERY_S:
            self._last_flush = now
            self._index.flush()

    def _finish(self, execution: Execution) -> None:
        failed = execution.counters.files_failed
        if execution.new_problems:
            listed = "; ".join(f"{p.path}: {p.reason}" for p in execution.problems)
            more = failed - len(execution.problems)
            suffix = f"; and {more} more" if more > 0 else ""
            execution.error = ErrorInfo(code="FilesFailed", message=f"{failed} file(s) failed: {listed}{suffix}"[:4000])
            execution.state = TransferState.ERROR
        else:
            execution.state = TransferState.SUCCESS
        execution.finished_at = time.time()


def _find(exc: BaseException, kind: type[Exception]) -> Exception | None:
    """``exc`` or the first exception of ``kind`` inside it (a TaskGroup wraps its tasks' errors in a group)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None


def _pass_error(exc: Exception) -> ErrorInfo:
    """What broke a pass, as its execution error: clear codes for the conditions people must act on."""
    index = _find(exc, ChangeIndexError)
    if index is not None:
        return ErrorInfo(
            code="ChangeIndexUnavailable",
            message=f"{index}; no file is shipped until the executor's state volume can be written again"[:1000],
        )
    nas = _find(exc, NasUnavailableError)
    if nas is not None:
        return ErrorInfo(code="NasUnavailable", message=str(nas)[:1000])
    return ErrorInfo(code="InternalException", message=f"{type(exc).__name__}: {exc}"[:1000])


@dataclass(slots=True)
class _Watched:
    entry: FileEntry
    marker: bool
    when_full: bool
    whole: bool


@dataclass(slots=True)
class _FolderWait:
    """A folder whose listing will match its rows once this pass has verified its ``left`` files."""

    digest: int
    writes: tuple[int, int]
    left: int
    own: int = 0


class _Pass:
    """One pass in flight: upload workers fed while the walk goes on, what waits for the end of the walk.

    Memory stays bounded whatever the number of files: the walk runs at most LOOKAHEAD_FOLDERS folders ahead, and
    a folder's files wait for a free upload slot (``queue`` holds at most twice the concurrency).
    """

    def __init__(self, engine: Engine, execution: Execution, sources: SourceRoot) -> None:
        self.engine = engine
        self.execution = execution
        assert execution.runbook is not None
        self.book: RunBook = execution.runbook
        self.sources = sources
        self.runs = RunFolders(engine._sequencers)
        config = engine._config
        self.timing = Timing.of(
            settle_s=config.settle_s, quiet_s=config.quiet_period_s, hold_s=config.hold_s, optimistic=config.optimistic
        )
        self.queue: asyncio.Queue[tuple[FileEntry, bool] | None] = asyncio.Queue(2 * config.concurrency)
        self.workers = 0
        self.confirm_room = asyncio.Semaphore(config.rebuild_concurrency)
        self.confirming: set[asyncio.Task[None]] = set()
        self.group: asyncio.TaskGroup | None = None
        self.markers: list[FileEntry] = []
        self.watching: dict[str, _Watched] = {}
        self.waits: dict[str, _FolderWait] = {}
        self.seen_known: list[str] = []
        self.noted: set[str] = set()  # upload intents noted and not yet recorded
        self.shipping = False

    async def take(self, scan: FolderScan) -> None:
        """Count one scanned folder and send its files on their way."""
        engine, execution, index = self.engine, self.execution, self.engine._index
        counters = execution.counters
        self.runs.observe(scan)
        self.book.add_folder(scan)
        for failure in scan.failures:
            engine._fail(execution, failure.nas_path, failure.reason, failure.signature)
        counters.files_skipped += scan.unchanged
        if scan.settled:
            return
        if scan.digest is not None and not scan.candidates:
            index.set_digest(scan.key, scan.digest, scan.writes)
            return
        if engine._known:
            self.seen_known.extend(e.nas_path for e, _ in scan.candidates if e.nas_path in engine._known)
        plan = make_plan(
            scan.candidates,
            now_ns=time.time_ns(),
            timing=self.timing,
            tracker=engine._tracker,
            sequencers=engine._sequencers,
            runs=self.runs,
            busy=engine._busy,
        )
        counters.files_skipped += plan.unchanged
        for entry in plan.pending:
            self.book.deferred(entry)
        for entry, marker, when_full in plan.soon:
            self.watch(entry, marker=marker, when_full=when_full)
        if scan.digest is not None and not plan.pending:
            self.waits[scan.key] = _FolderWait(scan.digest, scan.writes, len(scan.candidates) - plan.unchanged)
        for entry in plan.markers:
            self._claim(entry)
            self.markers.append(entry)
        for entry in plan.confirm:
            self._claim(entry)
            await self.confirm_room.acquire()
            task = self._spawn(engine._confirm(self, entry))
            self.confirming.add(task)
            task.add_done_callback(self._confirmed)
        ship = plan.ship
        for start in range(0, len(ship), INTENT_CHUNK):
            chunk = ship[start : start + INTENT_CHUNK]
            self.note(chunk)  # durably, before any of them can start
            for entry in chunk:
                self._claim(entry)
                await self.ship(entry, when_full=entry.key in plan.when_full)

    def note(self, entries: list[FileEntry]) -> None:
        """Note the keys about to be uploaded as upload intents (one transaction): if the process dies before their
        rows are written, the next start asks S3 about them instead of uploading them again (``reconcile_intents``)."""
        self.engine._index.note_intents(entry.key for entry in entries)
        self.noted.update(entry.key for entry in entries)

    def clear_intents(self) -> None:
        """Clear the intents of keys this pass noted and did not record (recording a key cleared its intent)."""
        if self.noted:
            self.engine._index.clear_intents(self.noted)
            self.noted.clear()

    def _claim(self, entry: FileEntry) -> None:
        counters = self.execution.counters
        counters.files_estimated += 1
        counters.bytes_estimated += entry.size
        self.engine._busy.add(entry.key)
        if not self.shipping:
            self.shipping = True
            self.execution.state = TransferState.TRANSFERRING

    async def ship(self, entry: FileEntry, *, when_full: bool) -> None:
        if self.workers < self.engine._config.concurrency:
            self.workers += 1
            self._spawn(self._worker())
        await self.queue.put((entry, when_full))

    def _confirmed(self, task: asyncio.Task[None]) -> None:
        self.confirming.discard(task)
        self.confirm_room.release()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self.group is not None
        return self.group.create_task(work)

    async def _worker(self) -> None:
        while (item := await self.queue.get()) is not None:
            entry, when_full = item
            await self.engine._upload_one(self, entry, when_full=when_full)

    async def drain(self) -> None:
        """Let the workers finish what is queued (confirmations running may still queue files)."""
        while self.confirming:
            await asyncio.wait(list(self.confirming))
        for _ in range(self.workers):
            await self.queue.put(None)
        self.workers = 0

    def watch(self, entry: FileEntry, *, marker: bool = False, when_full: bool = False, whole: bool = True) -> None:
        """Keep an eye on a pending file until the pass ends: it may become ready meanwhile (see ``linger``).
        ``whole`` False: it is shorter than its header says as it stands (checked again once it changes)."""
        if len(self.watching) < WATCH_MAX:
            self.watching[entry.key] = _Watched(entry, marker, when_full, whole)

    async def linger(self) -> None:
        """Watch the files left pending that may be ready soon, for up to ``linger_s``: each ships once it has
        settled (and, for a file whose header gives its length, once it is whole). Files still growing between
        two passes — a cycle's CBCL getting its last tiles, filter files — then go as soon as they are done, not at
        the next pass."""
        deadline = time.monotonic() + self.engine._config.linger_s
        index = self.engine._index
        while self.watching and time.monotonic() < deadline:
            await asyncio.sleep(LINGER_POLL_S)
            if index.pending_writes:
                index.flush()  # what is verified is on record now, not when the pass ends
            await self._sweep()
        await self.drain()

    async def _sweep(self) -> None:
        engine = self.engine
        now = time.time_ns()
        for key, watched in list(self.watching.items()):
            if key in engine._busy:
                continue
            entry = watched.entry
            try:
                st = os.stat(os.path.join(engine._scanner.root, entry.source), follow_symlinks=False)
            except OSError:
                del self.watching[key]  # gone: the next pass reports what became of it
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_dev != entry.dev:
                del self.watching[key]
                continue
            if not entry.same_as(st):
                watched.entry = entry_from_stat(entry.nas_path, entry.key, entry.source, st)
                watched.whole = True  # changed: settle again, then check again
                continue
            if not watched.whole or quiet_for(entry, now, engine._tracker) < self.timing.settle_ns:
                continue
            del self.watching[key]
            self.book.resumed(entry)
            self._claim(entry)
            if watched.marker:
                self.markers.append(entry)
            else:
                self.note([entry])
                await self.ship(entry, when_full=watched.when_full)

    def settled(self, entry: FileEntry) -> None:
        """``entry`` is recorded in the index as scanned: its folder may now take the fast path."""
        self.noted.discard(entry.key)
        folder = folder_of(entry.key)
        wait = self.waits.get(folder)
        if wait is None:
            return
        wait.own += 1
        wait.left -= 1
        if wait.left == 0:
            self.engine._index.set_digest(folder, wait.digest, wait.writes, wait.own)
            del self.waits[folder]

    def unsettle(self, entry: FileEntry) -> None:
        """``entry`` is not recorded as scanned: its folder goes through the index again next time."""
        self.waits.pop(folder_of(entry.key), None)

    def close(self) -> None:
        """Release what never reached an upload (a cancelled or failed pass)."""
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                self.engine._release(item[0])
        for marker in self.markers:
            self.engine._release(marker)
        self.sources.close()
