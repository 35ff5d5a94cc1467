"""What each instrument family writes: naming, flow cells, base-call layout, InterOp versions, markers, cadence.

Geometry and names come from the reference run folders (MiSeq, NextSeq 500, NovaSeq 6000) and, for the
others, from public RunInfo/RunParameters examples and Illumina's output-file documentation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.errors import SpecError


class BasecallFormat(StrEnum):
    BCL = "bcl"  # .bcl + .stats per tile per cycle (MiSeq, RTA 1)
    BGZF = "bgzf"  # {cycle:04d}.bcl.bgzf per lane per cycle + s_{lane}.bci (NextSeq 500/550, iSeq 100, RTA 2)
    CBCL = "cbcl"  # L00n_{surface}.cbcl per lane/surface/cycle + .filter per tile (RTA 3)


class Rta(StrEnum):
    """Real-Time Analysis generation: decides InterOp versions and marker contents."""

    RTA1 = "1"
    RTA2 = "2"
    RTA3 = "3"


class TileNaming(StrEnum):
    FOUR = "FourDigit"  # surface, swath, 2-digit tile
    FIVE = "FiveDigit"  # surface, swath, section (camera), 2-digit tile


@dataclass(frozen=True, slots=True)
class FlowcellType:
    name: str
    lanes: int
    surfaces: int
    swaths: int
    tiles_per_swath: int
    clusters_per_tile: int
    id_template: str  # '?' = letter or digit, '#' = digit, anything else literal
    sections_per_lane: int = 1
    lanes_per_section: int = 1
    naming: TileNaming = TileNaming.FOUR
    surfaces_descending: bool = False

    @property
    def tiles_per_lane(self) -> int:
        return self.surfaces * self.swaths * self.tiles_per_swath * self.sections_per_lane

    @property
    def tile_count(self) -> int:
        return self.lanes * self.tiles_per_lane

    def sections_of(self, lane: int) -> range:
        group = (lane - 1) // self.lanes_per_section
        first = group * self.sections_per_lane + 1
        return range(first, first + self.sections_per_lane)

    def _surfaces(self) -> range:
        return range(self.surfaces, 0, -1) if self.surfaces_descending else range(1, self.surfaces + 1)

    def tiles(self, lane: int) -> list[int]:
        """Tile numbers of one lane, in the order the instrument lists them."""
        if self.naming is TileNaming.FIVE:
            return [
                surface * 10000 + swath * 1000 + section * 100 + tile
                for section in self.sections_of(lane)
                for swath in range(1, self.swaths + 1)
                for tile in range(1, self.tiles_per_swath + 1)
                for surface in self._surfaces()
            ]
        return [
            surface * 1000 + swath * 100 + tile
            for surface in self._surfaces()
            for swath in range(1, self.swaths + 1)
            for tile in range(1, self.tiles_per_swath + 1)
        ]

    def surface_of(self, tile: int) -> int:
        return tile // (10000 if self.naming is TileNaming.FIVE else 1000)

    def run_info_tiles(self) -> list[str]:
        """``lane_tile`` names as RunInfo.xml lists them (NextSeq 500 interleaves lane pairs by section)."""
        if self.naming is not TileNaming.FIVE:
            return [f"{lane}_{tile}" for lane in range(1, self.lanes + 1) for tile in self.tiles(lane)]
        names: list[str] = []
        for group_start in range(1, self.lanes + 1, self.lanes_per_section):
            group = range(group_start, min(group_start + self.lanes_per_section, self.lanes + 1))
            for offset in range(self.sections_per_lane):
                for lane in group:
                    section = self.sections_of(lane)[offset]
                    names.extend(f"{lane}_{tile}" for tile in self.tiles(lane) if (tile // 100) % 10 == section % 10)
        return names


@dataclass(frozen=True, slots=True)
class Cadence:
    """Real timing of one run: clustering before cycle 1, seconds per cycle, last cycle to last marker."""

    clustering_s: float
    seconds_per_cycle: float
    finish_s: float


@dataclass(frozen=True, slots=True)
class InstrumentProfile:
    instrument: Instrument
    label: str
    serial_prefix: str
    serial_digits: int
    run_number_digits: int  # 0: written without padding
    sides: str  # flow-cell positions ('AB' on NovaSeq); '' when the name has none
    run_info_version: int
    channels: tuple[str, ...]  # RunInfo ImageChannels; empty on RunInfo v2 (MiSeq)
    image_dimensions: tuple[int, int] | None
    rta: Rta
    rta_version: str
    application: str
    application_version: str
    basecalls: BasecallFormat
    flowcells: dict[str, FlowcellType]
    default_flowcell: str
    default_reads: tuple[int, ...]
    index2_reverse_complement: bool
    sample_sheet_version: int
    run_parameters_file: str
    cadence: Cadence
    tile_area_mm2: float
    q30_share: float = 0.85  # mean share of base calls at or above Q30 (Illumina's 2x150 specs are 75-90 %)
    shapes_of: Instrument | None = None  # whose RunInfo/RunParameters shapes this model writes (default: its own)

    @property
    def family(self) -> Instrument:
        return self.shapes_of or self.instrument

    @property
    def markers(self) -> tuple[str, ...]:
        """The registry's markers, in the order the instrument writes them; the last one completes the run."""
        return self.instrument.markers

    def flowcell(self, name: str | None) -> FlowcellType:
        chosen = name or self.default_flowcell
        for key, flowcell in self.flowcells.items():
            if key.lower() == chosen.lower():
                return flowcell
        known = ", ".join(self.flowcells)
        raise SpecError("flowcell", f"{self.label} has no flow cell {chosen!r} (known: {known})")


def _miseq() -> InstrumentProfile:
    def fc(name: str, tiles: int, letter: str) -> FlowcellType:
        return FlowcellType(
            name=name,
            lanes=1,
            surfaces=2,
            swaths=1,
            tiles_per_swath=tiles,
            clusters_per_tile=770_000,
            id_template=f"000000000-{letter}????",
        )

    return InstrumentProfile(
        instrument=Instrument.MISEQ,
        label="MiSeq",
        serial_prefix="M",
        serial_digits=5,
        run_number_digits=4,
        sides="",
        run_info_version=2,
        channels=(),
        image_dimensions=None,
        rta=Rta.RTA1,
        rta_version="1.18.54",
        application="MiSeq Control Software",
        application_version="2.6.2.1",
        basecalls=BasecallFormat.BCL,
        flowcells={
            "v2-nano": fc("v2-nano", 1, "D"),
            "v2-micro": fc("v2-micro", 2, "G"),
            "v2": fc("v2", 14, "A"),
            "v3": fc("v3", 19, "B"),
        },
        default_flowcell="v2",
        default_reads=(151, 8, 8, 151),
        index2_reverse_complement=False,
        sample_sheet_version=1,
        run_parameters_file="runParameters.xml",
        cadence=Cadence(clustering_s=6300, seconds_per_cycle=240, finish_s=600),
        tile_area_mm2=0.8,
    )


def _iseq() -> InstrumentProfile:
    return InstrumentProfile(
        instrument=Instrument.ISEQ100,
        label="iSeq 100",
        serial_prefix="FS1000",
        serial_digits=4,
        run_number_digits=0,
        sides="",
        run_info_version=5,
        channels=("Green", "Blue"),  # one dye, two images; InterOp needs two names
        image_dimensions=(3200, 2480),
        rta=Rta.RTA2,
        rta_version="2.11.4",
        application="iSeq Control Software",
        application_version="2.2.0.9",
        basecalls=BasecallFormat.BGZF,
        flowcells={
            "i1": FlowcellType(
                name="i1",
                lanes=1,
                surfaces=1,
                swaths=1,
                tiles_per_swath=16,
                clusters_per_tile=400_000,
                id_template="BNT#####-####",
            )
        },
        default_flowcell="i1",
        default_reads=(151, 8, 8, 151),
        index2_reverse_complement=False,
        sample_sheet_version=1,
        run_parameters_file="RunParameters.xml",
        cadence=Cadence(clustering_s=3600, seconds_per_cycle=170, finish_s=900),
        tile_area_mm2=0.55,
    )


def _nextseq500() -> InstrumentProfile:
    return InstrumentProfile(
        instrument=Instrument.NEXTSEQ500,
        label="NextSeq 500",
        serial_prefix="NB",
        serial_digits=6,
        run_number_digits=4,
        sides="A",
        run_info_version=4,
        channels=("Red", "Green"),
        image_dimensions=(2592, 1944),
        rta=Rta.RTA2,
        rta_version="2.4.11",
        application="NextSeq Control Software",
        application_version="4.0.1.41",
        basecalls=BasecallFormat.BGZF,
        flowcells={
            "high": FlowcellType(
                name="high",
                lanes=4,
                surfaces=2,
                swaths=3,
                tiles_per_swath=12,
                clusters_per_tile=550_000,
                id_template="H????BGX?",
                sections_per_lane=3,
                lanes_per_section=2,
                naming=TileNaming.FIVE,
            )
        },
        default_flowcell="high",
        default_reads=(75, 8, 8, 75),
        index2_reverse_complement=False,
        sample_sheet_version=1,
        run_parameters_file="RunParameters.xml",
        cadence=Cadence(clustering_s=5400, seconds_per_cycle=300, finish_s=900),
        tile_area_mm2=2.8,
        q30_share=0.80,
    )


def _nextseq2000() -> InstrumentProfile:
    return InstrumentProfile(
        instrument=Instrument.NEXTSEQ2000,
        label="NextSeq 1000/2000",
        serial_prefix="VH",
        serial_digits=5,
        run_number_digits=0,
        sides="",
        run_info_version=6,
        channels=("green", "blue"),
        image_dimensions=(8208, 5541),
        rta=Rta.RTA3,
        rta_version="3.10.30",
        application="NextSeq 1000/2000 Control Software",
        application_version="1.5.0.42699",
        basecalls=BasecallFormat.CBCL,
        flowcells={
            "P3": FlowcellType(
                name="P3",
                lanes=2,
                surfaces=2,
                swaths=6,
                tiles_per_swath=16,
                clusters_per_tile=3_600_000,
                id_template="AAA????M5",
            )
        },
        default_flowcell="P3",
        default_reads=(151, 10, 10, 151),
        index2_reverse_complement=True,
        sample_sheet_version=2,
        run_parameters_file="RunParameters.xml",
        cadence=Cadence(clustering_s=7200, seconds_per_cycle=450, finish_s=1800),
        tile_area_mm2=1.2,
        q30_share=0.88,
    )


def _novaseq6000() -> InstrumentProfile:
    def fc(name: str, lanes: int, swaths: int, suffix: str) -> FlowcellType:
        return FlowcellType(
            name=name,
            lanes=lanes,
            surfaces=2,
            swaths=swaths,
            tiles_per_swath=78,
            clusters_per_tile=4_091_904,  # nanowells per tile, as the reference TileMetricsOut reports
            id_template=f"H????{suffix}#",
            surfaces_descending=True,
        )

    return InstrumentProfile(
        instrument=Instrument.NOVASEQ6000,
        label="NovaSeq 6000",
        serial_prefix="A",
        serial_digits=5,
        run_number_digits=4,
        sides="AB",
        run_info_version=5,
        channels=("RED", "GREEN"),
        image_dimensions=(3200, 3607),
        rta=Rta.RTA3,
        rta_version="v3.4.4",
        application="NovaSeq Control Software",
        application_version="1.8.1",
        basecalls=BasecallFormat.CBCL,
        flowcells={"S1": fc("S1", 2, 2, "DRX"), "S2": fc("S2", 2, 4, "DMX"), "S4": fc("S4", 4, 6, "DSX")},
        default_flowcell="S4",
        default_reads=(151, 10, 10, 151),
        index2_reverse_complement=False,
        sample_sheet_version=1,
        run_parameters_file="RunParameters.xml",
        cadence=Cadence(clustering_s=7200, seconds_per_cycle=470, finish_s=3600),
        tile_area_mm2=1.3818,
        q30_share=0.88,
    )


def _novaseqx() -> InstrumentProfile:
    return InstrumentProfile(
        instrument=Instrument.NOVASEQX,
        label="NovaSeq X",
        serial_prefix="LH",
        serial_digits=5,
        run_number_digits=4,
        sides="AB",
        run_info_version=6,
        channels=("blue", "green"),
        image_dimensions=(5120, 2879),
        rta=Rta.RTA3,
        rta_version="4.6.7",
        application="NovaSeqXSeries Control Software",
        application_version="1.2.0.28691",
        basecalls=BasecallFormat.CBCL,
        flowcells={
            "10B": FlowcellType(
                name="10B",
                lanes=8,
                surfaces=2,
                swaths=2,
                tiles_per_swath=98,
                clusters_per_tile=4_000_000,
                id_template="22????LT3",
            )
        },
        default_flowcell="10B",
        default_reads=(151, 10, 10, 151),
        index2_reverse_complement=True,
        sample_sheet_version=2,
        run_parameters_file="RunParameters.xml",
        cadence=Cadence(clustering_s=7200, seconds_per_cycle=250, finish_s=3600),
        tile_area_mm2=1.2,
        q30_share=0.90,
    )


def _nextseq550() -> InstrumentProfile:
    # Same control software, RTA and flow cells as the NextSeq 500; NB55 serials.
    return replace(
        _nextseq500(),
        instrument=Instrument.NEXTSEQ550,
        label="NextSeq 550",
        serial_prefix="NB55",
        serial_digits=4,
        shapes_of=Instrument.NEXTSEQ500,
    )


def _nextseq1000() -> InstrumentProfile:
    # The NextSeq 2000's software and file shapes on P1/P2 flow cells (one lane each); VH serials as well.
    p2 = FlowcellType(
        name="P2",
        lanes=1,
        surfaces=2,
        swaths=4,
        tiles_per_swath=16,
        clusters_per_tile=3_600_000,
        id_template="AAA????M5",
    )
    return replace(
        _nextseq2000(),
        instrument=Instrument.NEXTSEQ1000,
        label="NextSeq 1000",
        flowcells={"P2": p2},
        default_flowcell="P2",
        shapes_of=Instrument.NEXTSEQ2000,
    )


def _miniseq() -> InstrumentProfile:
    # RTA 2 like the NextSeq 500 (the same file shapes); one lane, A000H##### flow cells, MN serials.
    # Geometry is best effort: no public MiniSeq RunInfo.xml was available as a reference.
    return replace(
        _nextseq500(),
        instrument=Instrument.MINISEQ,
        label="MiniSeq",
        serial_prefix="MN",
        serial_digits=5,
        application="MiniSeq Control Software",
        application_version="2.2.0",
        flowcells={
            "high": FlowcellType(
                name="high",
                lanes=1,
                surfaces=2,
                swaths=3,
                tiles_per_swath=11,
                clusters_per_tile=700_000,
                id_template="000H#####",
            )
        },
        default_flowcell="high",
        default_reads=(151, 8, 8, 151),
        cadence=Cadence(clustering_s=3600, seconds_per_cycle=180, finish_s=900),
        tile_area_mm2=1.4,
        shapes_of=Instrument.NEXTSEQ500,
    )


PROFILES: dict[Instrument, InstrumentProfile] = {
    p.instrument: p
    for p in (
        _miseq(),
        _iseq(),
        _miniseq(),
        _nextseq500(),
        _nextseq550(),
        _nextseq1000(),
        _nextseq2000(),
        _novaseq6000(),
        _novaseqx(),
    )
}
"""Instruments the simulator writes runs for; the others in the registry (HiSeq, MiSeq i100) it refuses by name."""


def profile_of(instrument: Instrument | str) -> InstrumentProfile:
    known = ", ".join(i.value for i in PROFILES)
    try:
        return PROFILES[Instrument(instrument)]
    except ValueError:
        raise SpecError("instrument", f"unknown instrument {instrument!r} (simulated: {known})") from None
    except KeyError:
        raise SpecError("instrument", f"the simulator does not write {instrument} runs (simulated: {known})") from None
