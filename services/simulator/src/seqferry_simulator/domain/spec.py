"""A run to simulate, fully determined: the same spec always produces the same bytes."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.errors import SpecError
from seqferry_simulator.domain.naming import RunIdentity, flowcell_id_for, identity, serial_for
from seqferry_simulator.domain.profiles import FlowcellType, InstrumentProfile, profile_of
from seqferry_simulator.domain.reads import ReadStructure

MIN_SCALE = 1e-9
MAX_SCALE = 1.0
MAX_CHUNKS = 64


def seeded(*parts: object) -> random.Random:
    """A random generator for reproducible content (instrument serials, values); never for secrets."""
    return random.Random(derive_seed(*parts))  # noqa: S311 - reproducibility is the point


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (Python's hash() is salted per process, this is not)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class CompletionStatus(StrEnum):
    """``RunCompletionStatus.xml``'s CompletionStatus values (RTA 2 and later)."""

    COMPLETED_AS_PLANNED = "CompletedAsPlanned"
    USER_ENDED_EARLY = "UserEndedEarly"  # an operator stopped the run
    EXCEPTION_ENDED_EARLY = "ExceptionEndedEarly"  # the instrument aborted it (fluidics, imaging, ...)


ERROR_DESCRIPTIONS = {
    CompletionStatus.USER_ENDED_EARLY: "Run stopped by the user",
    CompletionStatus.EXCEPTION_ENDED_EARLY: "Fluidics error: flow check failed during chemistry",
}


@dataclass(frozen=True, slots=True)
class RunStop:
    """A run that ends before its planned cycles: after ``after_cycle`` cycles, for ``status``."""

    after_cycle: int
    status: CompletionStatus

    @property
    def error_description(self) -> str:
        return ERROR_DESCRIPTIONS.get(self.status, "None")


@dataclass(frozen=True, slots=True)
class RunSpec:
    profile: InstrumentProfile
    flowcell: FlowcellType
    reads: ReadStructure
    scale: float
    seed: int
    started_at: datetime
    identity: RunIdentity
    chunks: int = 4
    stop: RunStop | None = None

    @property
    def cycles_written(self) -> int:
        """Cycles the instrument writes: all of them, or those before it stopped."""
        return self.stop.after_cycle if self.stop is not None else self.total_cycles

    @property
    def completion_status(self) -> CompletionStatus:
        return self.stop.status if self.stop is not None else CompletionStatus.COMPLETED_AS_PLANNED

    @property
    def completed_cycles(self) -> tuple[int, int, int, int]:
        """Read 1, read 2, index 1 and index 2 cycles actually sequenced (RunCompletionStatus' Completed*)."""
        done = {read.number: 0 for read in self.reads.reads}
        for cycle in range(1, self.cycles_written + 1):
            done[self.reads.read_of_cycle(cycle).number] += 1
        seq = [done[r.number] for r in self.reads.sequencing_reads] + [0, 0]
        idx = [done[r.number] for r in self.reads.index_reads] + [0, 0]
        return seq[0], seq[1], idx[0], idx[1]

    @property
    def instrument(self) -> Instrument:
        return self.profile.instrument

    @property
    def family(self) -> Instrument:
        """The instrument whose file shapes this one shares (NextSeq 550 writes what NextSeq 500 writes)."""
        return self.profile.family

    @property
    def run_id(self) -> str:
        return self.identity.run_id

    @property
    def total_cycles(self) -> int:
        return self.reads.total_cycles

    @property
    def planned_cycles(self) -> tuple[int, int, int, int]:
        """Read 1, read 2, index 1 and index 2 cycles, 0 for an absent read (RunParameters' vocabulary)."""
        seq = [r.cycles for r in self.reads.sequencing_reads] + [0, 0]
        idx = [r.cycles for r in self.reads.index_reads] + [0, 0]
        return seq[0], seq[1], idx[0], idx[1]

    @property
    def clusters_per_tile(self) -> int:
        """Clusters in every tile after scaling; file sizes follow from it."""
        return max(1, round(self.flowcell.clusters_per_tile * self.scale))

    @property
    def filter_cycle(self) -> int:
        """RTA decides passing filter after 25 cycles and writes the filter files at cycle 26."""
        return min(26, self.total_cycles)


def new_run_spec(
    instrument: Instrument | str,
    *,
    seed: int,
    started_at: datetime,
    reads: str | int | Sequence[int] | None = None,
    flowcell: str | None = None,
    scale: float = 0.001,
    serial: str | None = None,
    run_number: int | None = None,
    side: str | None = None,
    chunks: int = 4,
    stop: RunStop | None = None,
) -> RunSpec:
    """Fill every unspecified detail from ``seed``; raise :class:`SpecError` naming the bad field."""
    profile = profile_of(instrument)
    if started_at.tzinfo is None:
        raise SpecError("started_at", "must be time-zone aware (the folder date is the lab's date)")
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise SpecError("scale", f"must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}")
    if not 1 <= chunks <= MAX_CHUNKS:
        raise SpecError("chunks", f"must be between 1 and {MAX_CHUNKS}, got {chunks}")
    fc = profile.flowcell(flowcell)
    structure = ReadStructure.parse(
        profile.default_reads if reads is None else reads,
        index2_reverse_complement=profile.index2_reverse_complement,
    )
    rng = seeded("identity", seed)
    ident = identity(
        profile,
        started_at=started_at,
        serial=serial or serial_for(profile, rng),
        run_number=run_number if run_number is not None else rng.randint(1, 999),
        flowcell_id=flowcell_id_for(fc, rng),
        side=side if side is not None else (rng.choice(profile.sides) if profile.sides else ""),
    )
    if stop is not None and not 1 <= stop.after_cycle < structure.total_cycles:
        raise SpecError(
            "stop_after_cycle",
            f"must be between 1 and {structure.total_cycles - 1} (the run has "
            f"{structure.total_cycles} cycles), got {stop.after_cycle}",
        )
    return RunSpec(
        profile=profile,
        flowcell=fc,
        reads=structure,
        scale=scale,
        seed=seed,
        started_at=started_at,
        identity=ident,
        chunks=chunks,
        stop=stop,
    )
