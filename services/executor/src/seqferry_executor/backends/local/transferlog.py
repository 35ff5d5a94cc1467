"""The local engine's per-file transfer log: one CloudWatch Logs stream per execution, in DataSync's shape.

DataSync with ``LogLevel=TRANSFER`` (the reference's option) writes one line per file it transfers and verifies,
and one per error, into a stream of the task's log group; the reference's dashboard reads those lines with Logs
Insights (``parse @message "[*] Transferred file *, * "``). The local engine writes the same lines, so one set of
queries serves both backends and a lab can audit either the same way:

    [NOTICE] Transferred file /sequencers/incoming/miseq/<run>/RunInfo.xml, 5164 bytes
    [NOTICE] Verified file /sequencers/incoming/miseq/<run>/RunInfo.xml, 5164 bytes, crc32c 3h1KZw==
    [ERROR] Failed file /sequencers/incoming/miseq/<run>/x.cbcl: file unreadable: Permission denied (EACCES)
    [WARNING] Not verified file /sequencers/incoming/miseq/<run>/y.cbcl: changed while it was uploaded

Each line's timestamp is when it happened; the stream's name is the execution id. Writing the log never fails a
pass: events are sent in batches every second (and when the pass ends, waiting at most ``CLOSE_TIMEOUT_S``). A call
that fails after the client's own retries (CloudWatch unreachable, the group missing, no permission) is logged
once; the execution's remaining lines are then counted as dropped, never retried forever: an outage costs log
lines, never transfers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seqferry_shared.patterns import escape

log = logging.getLogger(__name__)

# PutLogEvents limits: 10,000 events and 1,048,576 bytes per call, each event counted with 26 bytes of overhead.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_BUFFERED = 200_000
FLUSH_EVERY_S = 1.0
CLOSE_TIMEOUT_S = 30.0
PATH_LIMIT = 1024


def _path(nas_path: str) -> str:
    return escape(nas_path, PATH_LIMIT)


class ExecutionLog:
    """The log of one execution; lines are buffered and sent by :meth:`flush` (and by the periodic flusher)."""

    def __init__(self, client: Any, group: str, stream: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._group = group
        self._stream = stream
        self._clock = clock
        self._buffer: list[tuple[int, str]] = []
        self._stream_created = False
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._broken = False
        self.sent = 0
        self.dropped = 0

    # -- lines ----------------------------------------------------------------------------------------------------

    def transferred(self, nas_path: str, size: int) -> None:
        self._add(f"[NOTICE] Transferred file {_path(nas_path)}, {size} bytes")

    def verified(self, nas_path: str, size: int, algorithm: str, checksum: str | None) -> None:
        self._add(f"[NOTICE] Verified file {_path(nas_path)}, {size} bytes, {algorithm} {checksum or '-'}")

    def not_verified(self, nas_path: str, reason: str) -> None:
        self._add(f"[WARNING] Not verified file {_path(nas_path)}: {escape(reason, 300)}")

    def failed(self, nas_path: str, reason: str) -> None:
        self._add(f"[ERROR] Failed file {_path(nas_path)}: {escape(reason, 300)}")

    def _add(self, message: str) -> None:
        if self._broken or len(self._buffer) >= MAX_BUFFERED:
            self.dropped += 1
            return
        self._buffer.append((int(self._clock() * 1000), message))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    # -- sending --------------------------------------------------------------------------------------------------

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            while self._buffer:
                batch: list[dict[str, Any]] = []
                size = 0
                for timestamp, message in self._buffer[:MAX_BATCH_EVENTS]:
                    cost = len(message.encode("utf-8", "replace")) + EVENT_OVERHEAD
                    if batch and size + cost > MAX_BATCH_BYTES:
                        break
                    batch.append({"timestamp": timestamp, "message": message})
                    size += cost
                try:
                    await self._put(batch)
                except (ClientError, BotoCoreError) as exc:
                    # The client retried already: give this execution's log up, say so once, keep transferring.
                    log.warning("transfer log %s/%s not written: %s", self._group, self._stream, exc)
                    self._broken = True
                    self.dropped += len(self._buffer)
                    self._buffer.clear()
                    return
                del self._buffer[: len(batch)]
                self.sent += len(batch)

    async def _put(self, batch: list[dict[str, Any]]) -> None:
        if not self._stream_created:
            try:
                await self._client.create_log_stream(logGroupName=self._group, logStreamName=self._stream)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
            self._stream_created = True
        await self._client.put_log_events(logGroupName=self._group, logStreamName=self._stream, logEvents=batch)

    async def close(self) -> None:
        """Send what is left (once; failures are logged, never raised)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await asyncio.wait_for(self.flush(), timeout=CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "transfer log %s/%s: CloudWatch did not answer in %.0f s", self._group, self._stream, CLOSE_TIMEOUT_S
            )
        lost = len(self._buffer) + self.dropped
        if lost:
            log.warning("transfer log %s/%s: %d line(s) not written", self._group, self._stream, lost)


class NoLog(ExecutionLog):
    """Transfer logging turned off: lines go nowhere."""

    def __init__(self) -> None:
        super().__init__(client=None, group="", stream="")

    def _add(self, message: str) -> None:
        return

    async def close(self) -> None:
        return


class TransferLog:
    """Opens an :class:`ExecutionLog` per execution in one log group (or none when turned off)."""

    def __init__(self, client: Any | None, group: str) -> None:
        self._client = client
        self._group = group

    @property
    def group(self) -> str:
        return self._group

    def open(self, execution_id: str) -> ExecutionLog:
        if self._client is None:
            return NoLog()
        return ExecutionLog(self._client, self._group, execution_id)
