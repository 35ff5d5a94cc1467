"""What the simulator wrote and when, kept in a JSON-lines file so the disk budget survives restarts.

Only folders recorded here are ever deleted: the simulator never touches data it did not write.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from seqferry_simulator.domain.records import RunRecord, RunState

log = logging.getLogger(__name__)

KEEP_DELETED = 500  # history of deleted folders kept across restarts


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, RunRecord] = {}

    def load(self) -> None:
        """Replay the file; runs that were still running belong to a previous process and are abandoned."""
        self._records.clear()
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = RunRecord.model_validate_json(line)
                except ValidationError:
                    log.warning("ledger %s line %d is not a run record; skipped", self.path, number)
                    continue
                self._records[record.nas_path] = record
        for record in self._records.values():
            if record.state is RunState.RUNNING:
                record.state = RunState.ABANDONED
        deleted = [r for r in self.records() if r.state is RunState.DELETED]
        for record in deleted[: max(0, len(deleted) - KEEP_DELETED)]:
            del self._records[record.nas_path]
        self._rewrite()

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(r.model_dump_json() + "\n" for r in self._records.values()), encoding="utf-8")
        tmp.replace(self.path)

    def put(self, record: RunRecord) -> None:
        self._records[record.nas_path] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(record.model_dump_json() + "\n")

    def compact(self) -> None:
        self._rewrite()

    def records(self) -> list[RunRecord]:
        return sorted(self._records.values(), key=lambda r: r.started_at)

    def get(self, nas_path: str) -> RunRecord | None:
        return self._records.get(nas_path)
