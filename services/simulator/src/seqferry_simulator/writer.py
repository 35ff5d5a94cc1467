"""The step-driven run writer, an async driver that paces its steps in wall time, and folder sizes on disk.

``RunWriter.step()`` performs the next slot of the plan, so tests can stop anywhere mid-run without sleeping;
:func:`drive` runs the same steps at the plan's times for the service.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from seqferry_shared.periodic import wait_unless_stopping
from seqferry_simulator.domain.errors import SimulatorError
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.plan import Phase, RunPlan, Slot
from seqferry_simulator.domain.spec import RunSpec


class RunFolderExistsError(SimulatorError):
    """The run folder is already there; the simulator never writes into someone else's run."""


@dataclass(slots=True)
class RunProgress:
    """Where the run stands. The writer thread updates it; readers only look at the plain fields."""

    phase: Phase = Phase.PENDING
    cycles_done: int = 0
    elapsed_s: float = 0.0
    files: int = 0
    bytes: int = 0
    markers: list[str] = field(default_factory=list)


class RunWriter:
    def __init__(self, spec: RunSpec, parent: Path, pace: Pace) -> None:
        self.spec = spec
        self.pace = pace
        self.folder = parent / spec.run_id
        self.plan = RunPlan(spec, pace)
        self._slots = self.plan.slots()
        self._next: Slot | None = next(self._slots, None)
        self.progress = RunProgress()
        self._sizes: dict[str, int] = {}
        self._dirs: set[str] = set()

    @property
    def done(self) -> bool:
        return self._next is None

    @property
    def now(self) -> float:
        return self.progress.elapsed_s

    def next_time(self) -> float | None:
        return None if self._next is None else self._next.at

    def step(self) -> Slot | None:
        """Write the next slot; returns it, or None when the run is complete."""
        slot = self._next
        if slot is None:
            return None
        if self.progress.phase is Phase.PENDING:
            if self.folder.exists():
                raise RunFolderExistsError(f"{self.folder} already exists")
            self.folder.mkdir(parents=True)
        self._execute(slot)
        self._next = next(self._slots, None)
        return slot

    def advance_to(self, seconds: float) -> int:
        """Write every slot due by ``seconds`` after the start; returns how many were written."""
        written = 0
        while self._next is not None and self._next.at <= seconds:
            self.step()
            written += 1
        self.progress.elapsed_s = max(self.progress.elapsed_s, seconds)
        return written

    def run_to_end(self) -> None:
        while self.step() is not None:
            pass

    def _execute(self, slot: Slot) -> None:
        sizes = self._sizes
        progress = self.progress
        root = str(self.folder)
        for action in slot.actions:
            job = action.job
            path = os.path.join(root, job.relpath)
            parent = os.path.dirname(path)
            if parent not in self._dirs:
                os.makedirs(parent, exist_ok=True)
                self._dirs.add(parent)
            replace = action.portion == 0 and job.truncate
            before = sizes.get(job.relpath)
            size = 0 if replace or before is None else before
            with open(path, "wb" if replace else "ab") as out:
                for piece in job.portion(action.portion):
                    out.write(piece)
                    size += len(piece)
            sizes[job.relpath] = size
            progress.bytes += size - (before or 0)
            progress.files = len(sizes)
        progress.phase = slot.phase
        progress.cycles_done = slot.cycles_done
        progress.elapsed_s = max(progress.elapsed_s, slot.at)
        if slot.marker:
            progress.markers.append(slot.marker)


async def drive(
    writer: RunWriter,
    *,
    clock: Callable[[], float] = time.monotonic,
    stop: asyncio.Event | None = None,
) -> bool:
    """Write ``writer``'s slots at their times; returns False if ``stop`` was set before the run completed.

    File I/O runs in a worker thread so several runs and the HTTP API share one event loop.
    """
    origin = clock() - writer.now
    while not writer.done:
        due = writer.next_time()
        assert due is not None
        delay = due - (clock() - origin)
        if stop is None:
            if delay > 0:
                await asyncio.sleep(delay)
        elif await wait_unless_stopping(stop, delay):
            return False
        await asyncio.to_thread(writer.advance_to, clock() - origin)
    return True


def folder_size(folder: Path) -> int:
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total


def check_writable(folder: Path) -> None:
    """Readiness: the NAS root accepts new run folders."""
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"NAS root {folder} is not writable")
