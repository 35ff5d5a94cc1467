"""RunInfo.xml (every Illumina instrument writes it first) and the base-call cycle layout it implies."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from seqferry_shared.sequencers import Instrument

BASECALLS = "Data/Intensities/BaseCalls/"
# BCL and CBCL layouts (MiSeq, HiSeq, NovaSeq, NextSeq 1000/2000): one folder per lane and cycle (``L001/C12.1/``).
_CYCLE_FOLDER = re.compile(r"^Data/Intensities/BaseCalls/L(\d{3})/C(\d+)\.1/")
# BGZF layout (NextSeq 500/550, MiniSeq, iSeq 100): one file per lane and cycle (``L001/0012.bcl.bgzf``).
_CYCLE_FILE = re.compile(r"^Data/Intensities/BaseCalls/L(\d{3})/(\d{4})\.bcl\.bgzf$")
MAX_RUNINFO_BYTES = 4 * 1024 * 1024


class RunInfoError(ValueError):
    """RunInfo.xml is missing, unreadable or says something impossible."""


@dataclass(frozen=True, slots=True)
class Read:
    number: int
    cycles: int
    indexed: bool


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    reads: tuple[Read, ...]
    lane_count: int

    @property
    def total_cycles(self) -> int:
        return sum(read.cycles for read in self.reads)


def _int_attr(element: object, name: str, where: str) -> int:
    value = getattr(element, "attrib", {}).get(name)
    try:
        number = int(value) if value is not None else -1
    except ValueError:
        number = -1
    if number < 0:
        raise RunInfoError(f"RunInfo.xml: {where} has no valid {name}")
    return number


def read_run_file(data: bytes, name: str, max_bytes: int, error: type[ValueError]) -> Element:
    """The root element of a small XML file an instrument wrote (entities refused); raises ``error``."""
    if len(data) > max_bytes:
        raise error(f"{name} is {len(data)} bytes, larger than any real one")
    try:
        root: Element = fromstring(data)
    except (ParseError, DefusedXmlException) as exc:
        raise error(f"{name} is not well-formed XML: {exc}") from exc
    return root


def parse_run_info(data: bytes) -> RunInfo:
    """Parse RunInfo.xml (versions 2 to 6); raises :class:`RunInfoError`."""
    root = read_run_file(data, "RunInfo.xml", MAX_RUNINFO_BYTES, RunInfoError)
    run = root.find("Run")
    if run is None:
        raise RunInfoError("RunInfo.xml has no <Run> element")
    reads = tuple(
        Read(
            number=_int_attr(read, "Number", "a <Read>"),
            cycles=_int_attr(read, "NumCycles", "a <Read>"),
            indexed=read.attrib.get("IsIndexedRead", "N").upper() == "Y",
        )
        for read in run.iterfind("Reads/Read")
    )
    if not reads:
        raise RunInfoError("RunInfo.xml lists no <Read>")
    layout = run.find("FlowcellLayout")
    lane_count = _int_attr(layout, "LaneCount", "<FlowcellLayout>") if layout is not None else 1
    if lane_count < 1:
        raise RunInfoError("RunInfo.xml: LaneCount must be at least 1")
    return RunInfo(run_id=run.attrib.get("Id", ""), reads=reads, lane_count=lane_count)


def _cycles_by_lane(relative_keys: Iterable[str], instrument: Instrument | None) -> dict[int, set[int]]:
    if instrument is None:
        patterns = [_CYCLE_FOLDER, _CYCLE_FILE]
    else:
        patterns = [_CYCLE_FOLDER] if instrument.basecalls.cycle_per_folder else [_CYCLE_FILE]
    lanes: dict[int, set[int]] = {}
    for key in relative_keys:
        if not key.startswith(BASECALLS):
            continue
        for pattern in patterns:
            match = pattern.match(key)
            if match:
                lanes.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
                break
    return lanes


def cycles_present(run_info: RunInfo, relative_keys: Iterable[str], instrument: Instrument | None) -> int:
    """Cycles of RunInfo.xml's present in every lane (the fewest any lane has)."""
    expected = set(range(1, run_info.total_cycles + 1))
    lanes = _cycles_by_lane(relative_keys, instrument)
    return min((len(lanes.get(lane, set()) & expected) for lane in range(1, run_info.lane_count + 1)), default=0)


def _ranges(numbers: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def cycle_blockers(run_info: RunInfo, relative_keys: Iterable[str], instrument: Instrument | None) -> list[str]:
    """Why the base-call cycles in S3 disagree with RunInfo.xml (empty when every lane has every cycle).

    ``relative_keys`` are object keys relative to the run folder.
    """
    expected = set(range(1, run_info.total_cycles + 1))
    lanes = _cycles_by_lane(relative_keys, instrument)
    if not lanes:
        return [f"no base-call cycles under {BASECALLS} (RunInfo.xml expects {run_info.total_cycles} per lane)"]
    blockers = []
    for lane in range(1, run_info.lane_count + 1):
        present = lanes.get(lane, set())
        missing = sorted(expected - present)
        if missing:
            blockers.append(
                f"lane {lane}: {len(present & expected)} of {len(expected)} cycles present, "
                f"missing cycle(s) {_ranges(missing)}"
            )
    for lane in sorted(lanes):
        extra = sorted(lanes[lane] - expected)
        if lane > run_info.lane_count:
            blockers.append(f"lane {lane} is not in RunInfo.xml's {run_info.lane_count} lane(s)")
        elif extra:
            blockers.append(f"lane {lane}: cycle(s) {_ranges(extra)} beyond RunInfo.xml's {len(expected)}")
    return blockers
