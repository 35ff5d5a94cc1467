"""Reference parity: every round, copy the sample bucket into a new folder under each sequencer path."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from seqferry_shared.sequencers import SequencerPath
from seqferry_simulator.domain.parity import UnsafeKeyError, destination_folder, local_path, relative_key
from seqferry_simulator.domain.records import Kind, RunRecord, RunState
from seqferry_simulator.service import RunManager

log = logging.getLogger(__name__)

COPY_PIECE = 1 << 20


class ParityCopier:
    """Every tick, copy every object under the sample prefix into ``<path>/<date>/<uuid>/`` of each sequencer path."""

    def __init__(
        self,
        s3: Any,
        *,
        bucket: str,
        prefix: str,
        nas_root: Path,
        sequencers: tuple[SequencerPath, ...],
        zone: ZoneInfo,
        manager: RunManager,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._nas_root = nas_root
        self._sequencers = sequencers
        self._zone = zone
        self._manager = manager
        self._now = now

    async def _keys(self) -> list[tuple[str, str]]:
        """(key, path under the prefix) of every object to copy; unsafe keys are skipped with a warning."""
        keys: list[tuple[str, str]] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
            for obj in page.get("Contents", []):
                try:
                    keys.append((obj["Key"], relative_key(obj["Key"], self._prefix)))
                except UnsafeKeyError as exc:
                    log.warning("parity copy skips an object: %s", exc)
        return keys

    async def _download(self, key: str, target: Path) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        response = await self._s3.get_object(Bucket=self._bucket, Key=key)
        written = 0
        async with response["Body"] as body:
            with target.open("wb") as out:
                while piece := await body.read(COPY_PIECE):
                    out.write(piece)
                    written += len(piece)
        return written

    async def tick(self) -> list[RunRecord]:
        """One round (every ``parity_interval_s``): a new folder per sequencer path with every sample object."""
        keys = await self._keys()
        started = self._now()
        records = []
        for seq in self._sequencers:
            folder = destination_folder(seq.path, seq.date_format, started.astimezone(self._zone), str(uuid.uuid4()))
            size = 0
            for key, rel in keys:
                size += await self._download(key, local_path(self._nas_root, folder, rel))
            record = RunRecord(
                run_id=folder.rsplit("/", 1)[-1],
                kind=Kind.PARITY,
                sequencer_path=seq.path,
                nas_path=folder,
                started_at=started,
                completed_at=self._now(),
                state=RunState.COMPLETE,
                files=len(keys),
                bytes=size,
            )
            self._manager.record_copy(record)
            records.append(record)
            log.info("copied %d sample objects (%d bytes) to %s", len(keys), size, folder)
        await self._manager.enforce_budget()
        return records
