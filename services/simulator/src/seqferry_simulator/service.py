"""The simulator's application layer: which sequencer path is free, starting runs, pacing them, the disk budget.

The manager writes files and calls back on start and completion; publishing events is the caller's business.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from seqferry_shared.sequencers import Instrument, SequencerPath
from seqferry_simulator.domain.budget import Usage, to_delete
from seqferry_simulator.domain.errors import CapacityError, SimulatorError, SpecError
from seqferry_simulator.domain.naming import serial_for
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.plan import Phase
from seqferry_simulator.domain.profiles import profile_of
from seqferry_simulator.domain.records import RunRecord, RunState
from seqferry_simulator.domain.spec import CompletionStatus, RunSpec, RunStop, derive_seed, new_run_spec, seeded
from seqferry_simulator.store import Ledger
from seqferry_simulator.writer import RunWriter, drive, folder_size

log = logging.getLogger(__name__)

Callback = Callable[[RunRecord], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunRequest:
    instrument: Instrument | None = None
    sequencer_path: str | None = None
    cycles: str | int | Sequence[int] | None = None
    flowcell: str | None = None
    scale: float | None = None
    seed: int | None = None
    pace: str | None = None
    stop_after_cycle: int | None = None
    stop_status: CompletionStatus | None = None
    autonomous: bool = False  # started by the schedule: may stop early (stopped_run_share)


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    nas_root: Path
    sequencers: tuple[SequencerPath, ...]
    seed: int = 1
    pace: str = "1"
    scale: float = 0.0001
    chunks: int = 4
    max_parallel_runs: int = 2
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    run_cycles: str | None = None
    disk_budget_bytes: int | None = None
    stopped_run_share: float = 0.0


@dataclass(slots=True)
class ActiveRun:
    record: RunRecord
    writer: RunWriter
    side: str
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the API shows it: the ledger record plus live progress while it is being written."""

    record: RunRecord
    phase: Phase
    cycles_done: int
    markers: tuple[str, ...]


def _now() -> datetime:
    return datetime.now(UTC)


class RunManager:
    def __init__(
        self,
        config: ManagerConfig,
        ledger: Ledger,
        *,
        on_started: Callback,
        on_completed: Callback,
        now: Callable[[], datetime] = _now,
    ) -> None:
        for seq in config.sequencers:
            profile_of(seq.instrument)  # refuses, naming it, an instrument the simulator does not write
        self.config = config
        self.ledger = ledger
        self._on_started = on_started
        self._on_completed = on_completed
        self._now = now
        self._active: dict[str, ActiveRun] = {}
        self._next_number: dict[str, int] = {}
        self._round_robin = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._budget_lock = asyncio.Lock()

    # ----- queries

    @property
    def active(self) -> list[ActiveRun]:
        return list(self._active.values())

    def views(self) -> list[RunView]:
        views = []
        for record in self.ledger.records():
            active = self._active.get(record.nas_path)
            if active is None:
                phase = Phase.COMPLETE if record.state is RunState.COMPLETE else Phase.PENDING
                views.append(RunView(record, phase, record.cycles_done, tuple(record.markers)))
                continue
            progress = active.writer.progress
            live = record.model_copy(update={"files": progress.files, "bytes": progress.bytes})
            views.append(RunView(live, progress.phase, progress.cycles_done, tuple(progress.markers)))
        return views

    # ----- choosing where a run goes

    def _capacity(self, seq: SequencerPath) -> int:
        return max(1, len(profile_of(seq.instrument).sides))

    def _busy_sides(self, seq: SequencerPath) -> set[str]:
        return {a.side for a in self._active.values() if a.record.sequencer_path == seq.path}

    def _free(self, seq: SequencerPath) -> bool:
        return len(self._busy_sides(seq)) < self._capacity(seq)

    def _choose(self, request: RunRequest) -> SequencerPath:
        sequencers = self.config.sequencers
        if request.sequencer_path is not None:
            wanted = request.sequencer_path.rstrip("/") or "/"
            matches = [s for s in sequencers if s.path == wanted]
            if not matches:
                known = ", ".join(s.path for s in sequencers)
                raise SpecError("sequencer_path", f"{wanted!r} is not a configured sequencer path ({known})")
            seq = matches[0]
            if request.instrument is not None and request.instrument is not seq.instrument:
                raise SpecError("instrument", f"{seq.path} is a {seq.instrument} folder, not {request.instrument}")
            if not self._free(seq):
                raise CapacityError(f"the instrument writing to {seq.path} is busy")
            return seq
        candidates = [s for s in sequencers if request.instrument in (None, s.instrument)]
        if not candidates:
            configured = ", ".join(f"{s.path}={s.instrument}" for s in sequencers)
            raise SpecError(
                "instrument", f"no sequencer path is configured for {request.instrument} (configured: {configured})"
            )
        free = [s for s in candidates if self._free(s)]
        if not free:
            raise CapacityError(f"every {request.instrument or 'instrument'} is busy")
        seq = free[self._round_robin % len(free)]
        self._round_robin += 1
        return seq

    def _serial(self, seq: SequencerPath) -> str:
        return serial_for(profile_of(seq.instrument), seeded("serial", self.config.seed, seq.path))

    def _run_number(self, seq: SequencerPath, serial: str) -> int:
        """Next run number of this instrument: after the highest already on disk, else a seeded start.

        Only a run that actually starts uses its number up (see :meth:`start`).
        """
        profile = profile_of(seq.instrument)
        limit = 10**profile.run_number_digits - 1 if profile.run_number_digits else 99999
        current = self._next_number.get(seq.path)
        if current is None:
            folder = self.config.nas_root / seq.path.lstrip("/")
            pattern = re.compile(rf"^\d{{6,8}}_{re.escape(serial)}_(\d+)_")
            found = [int(m.group(1)) for p in _children(folder) if (m := pattern.match(p))]
            current = max(found) + 1 if found else seeded("run-number", self.config.seed, seq.path).randint(1, 500)
        return (current - 1) % limit + 1

    # ----- starting runs

    async def start(self, request: RunRequest) -> RunRecord:
        """Create the run folder, write its metadata, report it started, then let it run on its own."""
        if self._stopping.is_set():
            raise CapacityError("the simulator is shutting down")
        if len(self._active) >= self.config.max_parallel_runs:
            raise CapacityError(f"{len(self._active)} runs in flight, the configured maximum")
        seq = self._choose(request)
        profile = profile_of(seq.instrument)
        pace = Pace.of(request.pace or self.config.pace, profile.cadence)
        serial = self._serial(seq)
        run_number = self._run_number(seq, serial)
        busy = self._busy_sides(seq)
        side = next((s for s in profile.sides if s not in busy), "") if profile.sides else ""
        started_at = self._now().astimezone(self.config.zone)
        spec = new_run_spec(
            seq.instrument,
            seed=request.seed
            if request.seed is not None
            else derive_seed("run", self.config.seed, seq.path, run_number),
            started_at=started_at,
            reads=request.cycles if request.cycles is not None else self.config.run_cycles,
            flowcell=request.flowcell,
            scale=request.scale if request.scale is not None else self.config.scale,
            serial=serial,
            run_number=run_number,
            side=side,
            chunks=self.config.chunks,
        )
        spec = self._maybe_stopped(spec, request)
        parent = self.config.nas_root / seq.path.lstrip("/")
        writer = RunWriter(spec, parent, pace)
        nas_path = f"{seq.path.rstrip('/')}/{spec.run_id}"
        if nas_path in self._active or writer.folder.exists():
            raise CapacityError(f"run folder {nas_path} already exists; try again in a moment")
        record = RunRecord(
            run_id=spec.run_id,
            instrument=spec.instrument.value,
            sequencer_path=seq.path,
            nas_path=nas_path,
            flowcell=spec.flowcell.name,
            cycles=spec.reads.describe(),
            total_cycles=spec.total_cycles,
            scale=spec.scale,
            seed=spec.seed,
            started_at=started_at,
            completion_status=spec.completion_status.value,
        )
        active = ActiveRun(record=record, writer=writer, side=side)
        self._active[nas_path] = active
        self._next_number[seq.path] = run_number + 1
        try:
            await asyncio.to_thread(writer.step)  # folder, RunInfo.xml, RunParameters.xml, SampleSheet.csv
        except (OSError, SimulatorError):
            del self._active[nas_path]
            raise
        self.ledger.put(record)
        log.info("run %s started on %s (%s cycles, scale %g)", spec.run_id, seq.path, record.cycles, spec.scale)
        await self._on_started(record)
        active.task = asyncio.create_task(self._run(active), name=f"run {spec.run_id}")
        self._tasks.add(active.task)
        active.task.add_done_callback(self._tasks.discard)
        return record

    def _maybe_stopped(self, spec: RunSpec, request: RunRequest) -> RunSpec:
        """The run as requested; an autonomous one may end early (``stopped_run_share``, decided from the seed)."""
        if request.stop_after_cycle is not None:
            stop = RunStop(request.stop_after_cycle, request.stop_status or CompletionStatus.USER_ENDED_EARLY)
        elif not request.autonomous:
            return spec
        else:
            rng = seeded("stop", spec.seed)
            if spec.total_cycles < 2 or rng.random() >= self.config.stopped_run_share:
                return spec
            status = rng.choice([CompletionStatus.USER_ENDED_EARLY, CompletionStatus.EXCEPTION_ENDED_EARLY])
            stop = RunStop(rng.randint(1, spec.total_cycles - 1), status)
        if not 1 <= stop.after_cycle < spec.total_cycles:
            raise SpecError(
                "stop_after_cycle",
                f"must be between 1 and {spec.total_cycles - 1} for this run, got {stop.after_cycle}",
            )
        return replace(spec, stop=stop)

    async def _run(self, active: ActiveRun) -> None:
        record = active.record
        try:
            finished = await drive(active.writer, stop=self._stopping)
        except (OSError, SimulatorError) as exc:
            log.exception("run %s failed", record.run_id)
            self._finish(active, RunState.FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        if not finished:
            self._finish(active, RunState.ABANDONED)
            return
        done = self._finish(active, RunState.COMPLETE)
        log.info("run %s complete: %d files, %d bytes", done.run_id, done.files, done.bytes)
        await self._on_completed(done)
        await self.enforce_budget()

    def _finish(self, active: ActiveRun, state: RunState, error: str | None = None) -> RunRecord:
        progress = active.writer.progress
        record = active.record.model_copy(
            update={
                "state": state,
                "completed_at": self._now() if state is RunState.COMPLETE else None,
                "files": progress.files,
                "bytes": progress.bytes,
                "cycles_done": progress.cycles_done,
                "markers": list(progress.markers),
                "error": error,
            }
        )
        self._active.pop(record.nas_path, None)
        self.ledger.put(record)
        return record

    async def autostart(self) -> RunRecord | None:
        """Start one run on the next free instrument, if the limits allow it."""
        if self._stopping.is_set() or len(self._active) >= self.config.max_parallel_runs:
            return None
        if not any(self._free(s) for s in self.config.sequencers):
            return None
        return await self.start(RunRequest(autonomous=True))

    async def scheduled_round(self) -> None:
        """One round of the simulator's own schedule (every ``start_interval_s``): start a run if one may start,
        then apply the disk budget."""
        try:
            await self.autostart()
        except CapacityError as exc:
            log.info("no run started: %s", exc)
        await self.enforce_budget()

    # ----- disk budget

    def record_copy(self, record: RunRecord) -> None:
        """Register a finished folder written by someone else in this process (reference-parity copies)."""
        self.ledger.put(record)

    async def enforce_budget(self) -> list[RunRecord]:
        budget = self.config.disk_budget_bytes
        if budget is None:
            return []
        async with self._budget_lock:
            usages = []
            for record in self.ledger.records():
                if record.state is RunState.DELETED:
                    continue
                active = self._active.get(record.nas_path)
                if active is not None:
                    usages.append(Usage(record, active.writer.progress.bytes))
                    continue
                folder = self._local(record.nas_path)
                if folder.exists():
                    usages.append(Usage(record, await asyncio.to_thread(folder_size, folder)))
            deleted = []
            for usage in to_delete(usages, budget):
                folder = self._local(usage.record.nas_path)
                await asyncio.to_thread(shutil.rmtree, folder, True)
                record = usage.record.model_copy(update={"state": RunState.DELETED})
                self.ledger.put(record)
                deleted.append(record)
                log.info(
                    "deleted %s (%d bytes) to stay within the %d-byte budget", record.nas_path, usage.bytes, budget
                )
            return deleted

    def _local(self, nas_path: str) -> Path:
        return self.config.nas_root / nas_path.lstrip("/")

    # ----- shutdown

    async def idle(self) -> None:
        """Wait until every started run has finished, been reported and had the budget applied."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Stop writing; runs in flight are left as they are on disk (like a sequencer losing power)."""
        self._stopping.set()
        await self.idle()


def _children(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in folder.iterdir()]
    except FileNotFoundError:
        return []
