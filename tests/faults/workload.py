"""Work for the system under fault: realistic run folders written onto the NAS over time, and big files."""

from __future__ import annotations

import random
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.spec import new_run_spec
from seqferry_simulator.writer import RunWriter

INSTRUMENT_DIRS = {"miseq": "miseq", "novaseq6000": "novaseq", "nextseq2000": "nextseq2000"}


class RunFolder:
    """One simulated run folder (the simulator's own writer), written in a thread at ``pace`` cycles/second."""

    def __init__(
        self,
        nas: Path,
        instrument: str,
        *,
        reads: str,
        flowcell: str,
        seed: int,
        pace: float = 20.0,
        scale: float = 0.0001,
    ) -> None:
        self.spec = new_run_spec(
            instrument, seed=seed, started_at=datetime.now(UTC), reads=reads, flowcell=flowcell, scale=scale
        )
        parent = nas / "sequencers" / "incoming" / INSTRUMENT_DIRS[instrument]
        parent.mkdir(parents=True, exist_ok=True)
        self.writer = RunWriter(self.spec, parent, Pace.of(pace, self.spec.profile.cadence))
        self.nas = nas
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def folder(self) -> Path:
        return self.writer.folder

    @property
    def nas_path(self) -> str:
        return "/" + str(self.folder.relative_to(self.nas))

    def start(self) -> RunFolder:
        """Write the run over time (as the instrument would), in a background thread."""

        def write() -> None:
            try:
                origin = time.monotonic()
                while not self.writer.done:
                    due = self.writer.next_time()
                    assert due is not None
                    delay = due - (time.monotonic() - origin)
                    if delay > 0:
                        time.sleep(delay)
                    self.writer.advance_to(time.monotonic() - origin)
            except BaseException as exc:  # reported by wait()
                self.error = exc

        self._thread = threading.Thread(target=write, name=f"write-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def write_all(self) -> RunFolder:
        self.writer.run_to_end()
        return self

    @property
    def done(self) -> bool:
        return self.writer.done

    @property
    def started(self) -> bool:
        return self._thread is not None

    def wait(self, timeout_s: float = 300.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error
        assert self.writer.done, f"{self.run_id} not written within {timeout_s} s"

    def files(self) -> dict[str, int]:
        """Object key → size of every file in the folder."""
        found = {}
        for path in self.folder.rglob("*"):
            if path.is_file():
                found[str(path.relative_to(self.nas))] = path.stat().st_size
        return found


def write_big_file(path: Path, size: int, seed: int) -> int:
    """A file of ``size`` pseudo-random bytes (incompressible, reproducible); returns its CRC32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = random.Random(seed).randbytes(1 << 20)
    crc = 0
    with path.open("wb") as out:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            out.write(piece)
            crc = zlib.crc32(piece, crc)
            written += len(piece)
    return crc
