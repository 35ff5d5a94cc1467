"""DataSync's data mover for the stand-in: runs each execution through its phases and copies files into S3.

The stand-in (:mod:`seqferry_executor.testing.datasync_standin`) answers DataSync's API; this agent does what
DataSync's agent and service do behind it, so a whole system can run on the DataSync backend with no AWS:

- ``LAUNCHING`` → ``PREPARING``: lists the source folder (the NAS as the agent sees it) for files the
  execution's include filter matches, and compares each with what it last copied (size and mtime: the
  ``CHANGED`` transfer mode);
- ``TRANSFERRING``: copies the changed files listed at preparation — and only those: a file written after the
  listing waits for the next execution, as with DataSync — to ``s3://<bucket>/<path relative to the source>``;
- ``VERIFYING`` → ``SUCCESS``, with DataSync's counters; a file that cannot be read ends the execution in
  ``ERROR`` with ``FilesFailed``;
- every state change is also put on the default bus as DataSync's own ``DataSync Task Execution State Change``
  event (``source: aws.datasync``), when an EventBridge client is given.

One phase per ``step_s``; it stops by itself with :meth:`stop`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqferry_executor.testing.datasync_standin import DataSyncStandIn
from seqferry_shared.patterns import Matcher
from seqferry_shared.testing.datasync_events import datasync_state_change

log = logging.getLogger(__name__)

NEXT = {"LAUNCHING": "PREPARING", "PREPARING": "TRANSFERRING", "TRANSFERRING": "VERIFYING", "VERIFYING": "SUCCESS"}


@dataclass
class _Prepared:
    files: list[tuple[str, int, int]] = field(default_factory=list)  # (NAS path, size, mtime_ns)
    estimated_bytes: int = 0


class DataSyncAgent:
    def __init__(
        self,
        standin: DataSyncStandIn,
        source: Path,
        s3: Any,
        bucket: str,
        *,
        events: Any = None,
        step_s: float = 0.3,
    ) -> None:
        self._standin = standin
        self._source = source
        self._s3 = s3
        self._bucket = bucket
        self._events = events
        self._step_s = step_s
        self._copied: dict[str, tuple[int, int]] = {}
        self._prepared: dict[str, _Prepared] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.objects_written: list[str] = []

    def start(self) -> DataSyncAgent:
        self._thread = threading.Thread(target=self._run, name="datasync-agent", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.wait(self._step_s):
            for execution in self._standin.executions_in(*NEXT):
                self._advance(execution.arn, NEXT[execution.status])

    def _advance(self, arn: str, status: str) -> None:
        execution = self._standin.executions[arn]
        counters: dict[str, Any] = {}
        if status == "PREPARING":
            prepared = self._prepare(execution.filter_value)
            self._prepared[arn] = prepared
            counters = {
                "FilesPrepared": len(prepared.files),
                "EstimatedFilesToTransfer": len(prepared.files),
                "EstimatedBytesToTransfer": prepared.estimated_bytes,
            }
        elif status == "TRANSFERRING":
            files, size, failed = self._transfer(self._prepared.get(arn, _Prepared()))
            counters = {"FilesTransferred": files, "BytesTransferred": size, "BytesWritten": size}
            if failed:
                counters["FilesFailed"] = {"Prepare": 0, "Transfer": failed, "Verify": 0, "Delete": 0}
                self._standin.advance(arn, "TRANSFERRING", **counters)
                self._standin.fail(arn, "DataSyncAgentError", f"{failed} file(s) could not be read")
                self._emit(arn, "ERROR")
                return
        elif status == "SUCCESS":
            counters = {"FilesVerified": int(execution.counters.get("FilesTransferred", 0))}
            self._prepared.pop(arn, None)
        self._standin.advance(arn, status, **counters)
        self._emit(arn, status)

    def _prepare(self, filter_value: str) -> _Prepared:
        matcher = Matcher.of(p for p in filter_value.split("|") if p)
        prepared = _Prepared()
        for directory, _, names in os.walk(self._source):
            for name in sorted(names):
                local = Path(directory) / name
                nas_path = "/" + local.relative_to(self._source).as_posix()
                if not matcher.matches(nas_path):
                    continue
                stat = local.stat()
                if self._copied.get(nas_path) == (stat.st_size, stat.st_mtime_ns):
                    continue
                prepared.files.append((nas_path, stat.st_size, stat.st_mtime_ns))
                prepared.estimated_bytes += stat.st_size
        return prepared

    def _transfer(self, prepared: _Prepared) -> tuple[int, int, int]:
        files = size = failed = 0
        for nas_path, _, _ in prepared.files:
            local = self._source / nas_path.lstrip("/")
            try:
                body = local.read_bytes()
                stat = local.stat()
            except OSError:
                failed += 1
                continue
            key = nas_path.lstrip("/")
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
            self._copied[nas_path] = (stat.st_size, stat.st_mtime_ns)
            self.objects_written.append(key)
            files += 1
            size += len(body)
        return files, size, failed

    def _emit(self, arn: str, state: str) -> None:
        if self._events is not None:
            self._events.put_events(Entries=[datasync_state_change(arn, state)])
