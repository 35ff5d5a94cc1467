"""Read structures: which cycles belong to which read, in Illumina's order (R1, I1, I2, R2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from seqferry_simulator.domain.errors import SpecError

MAX_READ_CYCLES = 651
MAX_TOTAL_CYCLES = 1000

# How instruments order reads: the index reads sit between the two sequencing reads.
_SHAPES: dict[int, tuple[bool, ...]] = {
    1: (False,),
    2: (False, False),
    3: (False, True, False),
    4: (False, True, True, False),
}


@dataclass(frozen=True, slots=True)
class Read:
    number: int
    cycles: int
    is_index: bool
    reverse_complement: bool = False


@dataclass(frozen=True, slots=True)
class ReadStructure:
    reads: tuple[Read, ...]

    @property
    def total_cycles(self) -> int:
        return sum(r.cycles for r in self.reads)

    def read_of_cycle(self, cycle: int) -> Read:
        """The read a 1-based cycle belongs to."""
        end = 0
        for read in self.reads:
            end += read.cycles
            if cycle <= end:
                return read
        raise ValueError(f"cycle {cycle} is past the last cycle ({end})")

    def first_cycle(self, read: Read) -> int:
        start = 1
        for r in self.reads:
            if r.number == read.number:
                return start
            start += r.cycles
        raise ValueError(f"read {read.number} is not in this structure")

    @property
    def index_reads(self) -> tuple[Read, ...]:
        return tuple(r for r in self.reads if r.is_index)

    @property
    def sequencing_reads(self) -> tuple[Read, ...]:
        return tuple(r for r in self.reads if not r.is_index)

    def describe(self) -> str:
        return ",".join(str(r.cycles) for r in self.reads)

    @classmethod
    def of(cls, cycles: Sequence[int], *, index2_reverse_complement: bool = False) -> ReadStructure:
        """Build from cycles per read: 1 value = single read, 2 = paired, 3 = R1,I1,R2, 4 = R1,I1,I2,R2."""
        shape = _SHAPES.get(len(cycles))
        if shape is None:
            raise SpecError("cycles", f"give 1 to 4 reads (R1[,I1[,I2]],R2), got {len(cycles)}")
        for value in cycles:
            if not 1 <= value <= MAX_READ_CYCLES:
                raise SpecError("cycles", f"each read needs 1 to {MAX_READ_CYCLES} cycles, got {value}")
        if sum(cycles) > MAX_TOTAL_CYCLES:
            raise SpecError("cycles", f"at most {MAX_TOTAL_CYCLES} cycles in total, got {sum(cycles)}")
        index_seen = 0
        reads: list[Read] = []
        for number, (value, is_index) in enumerate(zip(cycles, shape, strict=True), start=1):
            index_seen += is_index
            reads.append(
                Read(
                    number=number,
                    cycles=value,
                    is_index=is_index,
                    reverse_complement=is_index and index_seen == 2 and index2_reverse_complement,
                )
            )
        return cls(tuple(reads))

    @classmethod
    def parse(cls, value: str | int | Sequence[int], *, index2_reverse_complement: bool = False) -> ReadStructure:
        """Accept ``151``, ``"151,151"``, ``"151+10+10+151"`` or a list of integers."""
        if isinstance(value, bool):
            raise SpecError("cycles", "expected a number of cycles or a list such as '151,10,10,151'")
        if isinstance(value, int):
            numbers: list[int] = [value]
        elif isinstance(value, str):
            parts = [p for p in re.split(r"[,+\s]+", value.strip()) if p]
            if not parts or not all(p.isdigit() for p in parts):
                raise SpecError("cycles", f"expected cycles per read such as '151,10,10,151', got {value!r}")
            numbers = [int(p) for p in parts]
        else:
            numbers = [int(v) for v in value]
        return cls.of(numbers, index2_reverse_complement=index2_reverse_complement)
