"""The instrument registry, and the sequencer output paths that name an instrument each.

``SEQFERRY_SEQUENCER_PATHS`` is a comma-separated list of NAS-absolute folders, one per instrument, each tagged
with its instrument: ``/sequencers/incoming/miseq=miseq,/sequencers/incoming/x=novaseqx``. A path without a tag
is accepted only when its last segment names exactly one instrument (``miseq``, ``iseq``, ``novaseq6000``...);
a family name such as ``nextseq`` or ``novaseq``, or any other name, stops the service at start with a message
naming the path and the tags to choose from. Nothing is guessed from substrings.

Everything that depends on the instrument reads :data:`REGISTRY`: the scheduler's run-folder date format, the
local engine's marker ordering, the notifier's completion marker and base-call layout, the simulator.

Sources (facts that no instrument-neutral document states are marked where they are used):

- Illumina knowledge base, instrument file-path articles: MiSeq 000001678, NextSeq 500/550 000002072,
  NextSeq 1000/2000 000002443, NovaSeq 6000 000002426 (https://knowledge.illumina.com/instrumentation/...),
  and the NextSeq 500/550 system guide 15046563 ("Sequencing Output Folder Structure").
- Illumina InterOp (github.com/Illumina/interop): the instrument families it knows (``constants::instrument_type``:
  HiSeq, MiSeq, NextSeq, MiniSeq, NovaSeq, iSeq, NextSeq1k2k) and their RunInfo/RunParameters layouts.
- BCL Convert and bcl2fastq2 software guides (Illumina 1000000163594, 15051736): the base-call layouts
  (``L00n/C{c}.1/*.bcl[.gz]`` per tile, ``L00n/{c:04d}.bcl.bgzf`` per lane, ``L00n/C{c}.1/L00n_{s}.cbcl``), and that
  a run folder is complete for conversion once ``CopyComplete.txt`` is present where the instrument writes it.
- Real run folders under ``tests/reference/illumina`` (MiSeq, NextSeq 500, NovaSeq 6000; see SOURCES.md there).
- Public run-folder tooling that encodes the last file each instrument writes: arteria-runfolder
  (``runfolder/lib/instrument.py``: NovaSeq, NovaSeq X and iSeq finish with ``CopyComplete.txt``, MiSeq and HiSeq
  with ``RTAComplete.txt``) and facility archive scripts (HiSeq 3000/4000 finish with ``SequencingComplete.txt``,
  NextSeq 500/550 with ``RunCompletionStatus.xml``), and instrument serial prefixes from wtsi-npg/npg_tracking
  and nickp60/fcid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

from seqferry_shared.errors import SeqferryError
from seqferry_shared.patterns import PatternError, validate_pattern

# The reference's four folders, each tagged: 'nextseq' alone names a family (500/550 or 1000/2000), not an instrument.
DEFAULT_SEQUENCER_PATHS = (
    "/sequencers/incoming/iseq=iseq100,/sequencers/incoming/nextseq=nextseq500,"
    "/sequencers/incoming/miseq=miseq,/sequencers/incoming/nextseq2000=nextseq2000"
)

TWO_DIGIT_YEAR = "%y%m%d"
FOUR_DIGIT_YEAR = "%Y%m%d"
RTA_COMPLETE = "RTAComplete.txt"
RUN_COMPLETION_STATUS = "RunCompletionStatus.xml"
COPY_COMPLETE = "CopyComplete.txt"
SEQUENCE_COMPLETE = "SequenceComplete.txt"
SEQUENCING_COMPLETE = "SequencingComplete.txt"


class Instrument(StrEnum):
    """Tags of ``SEQFERRY_SEQUENCER_PATHS``: one per instrument model a lab can own."""

    MISEQ = "miseq"
    MISEQ_I100 = "miseqi100"
    ISEQ100 = "iseq100"
    MINISEQ = "miniseq"
    NEXTSEQ500 = "nextseq500"
    NEXTSEQ550 = "nextseq550"
    NEXTSEQ1000 = "nextseq1000"
    NEXTSEQ2000 = "nextseq2000"
    HISEQ2000 = "hiseq2000"
    HISEQ2500 = "hiseq2500"
    HISEQ3000 = "hiseq3000"
    HISEQ4000 = "hiseq4000"
    HISEQX = "hiseqx"
    NOVASEQ6000 = "novaseq6000"
    NOVASEQX = "novaseqx"

    @property
    def spec(self) -> InstrumentSpec:
        return REGISTRY[self]

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def date_format(self) -> str:
        """strftime format of the date that starts this instrument's run-folder names."""
        return self.spec.date_format

    @property
    def completion_marker(self) -> str:
        """The last file the instrument writes into a finished run folder."""
        return self.spec.completion_marker

    @property
    def markers(self) -> tuple[str, ...]:
        return self.spec.markers

    @property
    def run_folder_pattern(self) -> re.Pattern[str]:
        return self.spec.folder_pattern

    @property
    def basecalls(self) -> BasecallLayout:
        return self.spec.basecalls


class BasecallLayout(StrEnum):
    """Where a run folder keeps its base calls (``Data/Intensities/BaseCalls/``), by RTA generation."""

    BCL_PER_TILE = "bcl"  # L00n/C{c}.1/s_{lane}_{tile}.bcl[.gz] (+ .stats): RTA 1 (MiSeq, HiSeq 2000/2500), RTA 2.5/2.7
    BGZF_PER_LANE = "bgzf"  # L00n/{c:04d}.bcl.bgzf + s_{lane}.bci: RTA 2 (NextSeq 500/550, MiniSeq, iSeq 100)
    CBCL = "cbcl"  # L00n/C{c}.1/L00n_{surface}.cbcl + s_{lane}_{tile}.filter: RTA 3/4 (NovaSeq, NextSeq 1k/2k, i100)

    @property
    def cycle_per_folder(self) -> bool:
        """True when every cycle has its own ``C{c}.1/`` folder (False: one ``{c:04d}.bcl.bgzf`` file per cycle)."""
        return self is not BasecallLayout.BGZF_PER_LANE


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What seqferry relies on for one instrument model."""

    label: str
    folder_pattern: re.Pattern[str]
    """The run-folder name: ``<date>_<serial>_<run number>_<flow cell>``."""
    date_format: str
    basecalls: BasecallLayout
    markers: tuple[str, ...]
    """Completion markers in the order the instrument writes them; the last one completes the run."""
    example: str
    """A run-folder name of this instrument (real where one is published, else built from the pattern)."""

    @property
    def completion_marker(self) -> str:
        return self.markers[-1]

    @property
    def writes_status(self) -> bool:
        """True when the instrument writes ``RunCompletionStatus.xml`` (whether the run completed as planned)."""
        return RUN_COMPLETION_STATUS in self.markers


def _spec(
    label: str, pattern: str, date_format: str, basecalls: BasecallLayout, *markers: str, example: str
) -> InstrumentSpec:
    return InstrumentSpec(label, re.compile(pattern), date_format, basecalls, tuple(markers), example)


_NEXTSEQ_500_550 = r"^\d{6}_N[BS]\d{6}_\d{4}_A[A-Z0-9]{9}$"  # NS500318 (NextSeq 500), NB501807/NB551168 (500 and 550)
_NEXTSEQ_1K_2K = r"^\d{6}_VH\d{5}_\d+_[A-Z0-9]+$"  # both models: VH serials, unpadded run number
_HISEQ_FLOWCELL = r"_\d{4}_[AB][A-Z0-9]{9}$"

REGISTRY: Mapping[Instrument, InstrumentSpec] = {
    # Reference folder 140211_M00612_0148_000000000-A7M8N: RTA 1.18 writes RTAComplete.txt last (KB 000001678).
    # MiSeq Control Software 4 (Windows 10) also writes CopyComplete.txt through the Universal Copy Service; see
    # the README's instrument notes.
    Instrument.MISEQ: _spec(
        "MiSeq",
        r"^\d{6}_M\d{5}_\d{4}_0{9}-[A-Z0-9]{5}$",
        TWO_DIGIT_YEAR,
        BasecallLayout.BCL_PER_TILE,
        RTA_COMPLETE,
        example="140211_M00612_0148_000000000-A7M8N",
    ),
    # MiSeq i100 Series (RTA 4, as NovaSeq X): 8-digit date, flow cell 'SC#######-SC#' with a side letter
    # (mll-lab/php-utils #82: 'ASC2139476-SC3'). Serial prefix 'SH' is best effort: the pattern accepts any two.
    Instrument.MISEQ_I100: _spec(
        "MiSeq i100 Series",
        r"^\d{8}_[A-Z]{2}\d{5}_\d{4}_[AB]?SC\d{7}-SC\d$",
        FOUR_DIGIT_YEAR,
        BasecallLayout.CBCL,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        COPY_COMPLETE,
        example="20250312_SH00252_0004_ASC2139476-SC3",
    ),
    # iSeq 100: 8-digit date, FS10000### serials; the Universal Copy Service writes CopyComplete.txt last.
    Instrument.ISEQ100: _spec(
        "iSeq 100",
        r"^\d{8}_FS\d{8}_\d+_[A-Z0-9-]+$",
        FOUR_DIGIT_YEAR,
        BasecallLayout.BGZF_PER_LANE,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        COPY_COMPLETE,
        example="20250312_FS10000123_12_BNT40323-1214",
    ),
    # MiniSeq: NextSeq's RTA 2 and control software family (InterOp treats both as two-channel RTA 2);
    # MN serials, flow cells 'A000H#####' (e.g. 190715_MN00302_0284_A000H2VKFF).
    Instrument.MINISEQ: _spec(
        "MiniSeq",
        r"^\d{6}_MN\d{5}_\d{4}_A000H[A-Z0-9]{5}$",
        TWO_DIGIT_YEAR,
        BasecallLayout.BGZF_PER_LANE,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        example="190715_MN00302_0284_A000H2VKFF",
    ),
    # Reference folder 160404_NS500318_0141_AHW37NBGXX ends with RunCompletionStatus.xml (KB 000002072).
    Instrument.NEXTSEQ500: _spec(
        "NextSeq 500",
        _NEXTSEQ_500_550,
        TWO_DIGIT_YEAR,
        BasecallLayout.BGZF_PER_LANE,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        example="160404_NS500318_0141_AHW37NBGXX",
    ),
    Instrument.NEXTSEQ550: _spec(
        "NextSeq 550",
        _NEXTSEQ_500_550,
        TWO_DIGIT_YEAR,
        BasecallLayout.BGZF_PER_LANE,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        example="180717_NB551168_0163_AHF727BGX7",
    ),
    # NextSeq 1000/2000 (KB 000002443): RTA 3 CBCL, RunCompletionStatus.xml, then CopyComplete.txt in the output.
    Instrument.NEXTSEQ1000: _spec(
        "NextSeq 1000",
        _NEXTSEQ_1K_2K,
        TWO_DIGIT_YEAR,
        BasecallLayout.CBCL,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        COPY_COMPLETE,
        example="251125_VH00456_17_AAFKJ2NM5",
    ),
    Instrument.NEXTSEQ2000: _spec(
        "NextSeq 2000",
        _NEXTSEQ_1K_2K,
        TWO_DIGIT_YEAR,
        BasecallLayout.CBCL,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        COPY_COMPLETE,
        example="251125_VH00123_42_AAFKJ2NM5",
    ),
    # HiSeq 2000/2500 (RTA 1.x, HCS 2.x): .bcl.gz per tile and cycle; RTAComplete.txt last. Serials SN#### / D#####.
    Instrument.HISEQ2000: _spec(
        "HiSeq 2000",
        r"^\d{6}_SN\d{3,7}" + _HISEQ_FLOWCELL,
        TWO_DIGIT_YEAR,
        BasecallLayout.BCL_PER_TILE,
        RTA_COMPLETE,
        example="150416_SN7001180_0196_BC605HACXX",
    ),
    Instrument.HISEQ2500: _spec(
        "HiSeq 2500",
        r"^\d{6}_D\d{5}" + _HISEQ_FLOWCELL,
        TWO_DIGIT_YEAR,
        BasecallLayout.BCL_PER_TILE,
        RTA_COMPLETE,
        example="170531_D00410_0425_AHKL7LBCXY",
    ),
    # HiSeq 3000/4000/X (RTA 2.5/2.7, HCS 3.x): .bcl.gz per tile and cycle, s.locs; the control software writes
    # SequencingComplete.txt after RTAComplete.txt. Serials J##### (3000), K##### (4000), ST-E##### (X).
    Instrument.HISEQ3000: _spec(
        "HiSeq 3000",
        r"^\d{6}_J\d{5}" + _HISEQ_FLOWCELL,
        TWO_DIGIT_YEAR,
        BasecallLayout.BCL_PER_TILE,
        RTA_COMPLETE,
        SEQUENCING_COMPLETE,
        example="160120_J00115_0034_AHCWLFBBXX",
    ),
    Instrument.HISEQ4000: _spec(
        "HiSeq 4000",
        r"^\d{6}_K\d{5}" + _HISEQ_FLOWCELL,
        TWO_DIGIT_YEAR,
        BasecallLayout.BCL_PER_TILE,
        RTA_COMPLETE,
        SEQUENCING_COMPLETE,
        example="170101_K00150_0123_BHJV2FBBXX",
    ),
    Instrument.HISEQX: _spec(
        "HiSeq X",
        r"^\d{6}_ST-E\d{5}" + _HISEQ_FLOWCELL,
        TWO_DIGIT_YEAR,
        BasecallLayout.BCL_PER_TILE,
        RTA_COMPLETE,
        SEQUENCING_COMPLETE,
        example="190115_ST-E00269_0332_AHWNK2CCXY",
    ),
    # Reference folder 240802_A01934_0156_AHJF77DRX5; KB 000002426: RTAComplete, SequenceComplete, CopyComplete.
    Instrument.NOVASEQ6000: _spec(
        "NovaSeq 6000",
        r"^\d{6}_A\d{5}_\d{4}_[AB][A-Z0-9]{9}$",
        TWO_DIGIT_YEAR,
        BasecallLayout.CBCL,
        RTA_COMPLETE,
        SEQUENCE_COMPLETE,
        COPY_COMPLETE,
        example="240802_A01934_0156_AHJF77DRX5",
    ),
    # NovaSeq X / X Plus (RTA 4): 8-digit date, LH serials, CopyComplete.txt last.
    Instrument.NOVASEQX: _spec(
        "NovaSeq X",
        r"^\d{8}_LH\d{5}_\d{4}_[AB]?[A-Z0-9]{7,10}$",
        FOUR_DIGIT_YEAR,
        BasecallLayout.CBCL,
        RTA_COMPLETE,
        RUN_COMPLETION_STATUS,
        COPY_COMPLETE,
        example="20251125_LH00123_0001_A22ABCDEF3",
    ),
}

ALL_MARKERS: frozenset[str] = frozenset(m for spec in REGISTRY.values() for m in spec.markers)

# Folder names that name exactly one instrument (besides the tags themselves), and family names that do not.
_FOLDER_NAMES: Mapping[str, Instrument] = {"iseq": Instrument.ISEQ100, "miseqi100series": Instrument.MISEQ_I100}
_FAMILIES: Mapping[str, tuple[Instrument, ...]] = {
    "nextseq": (Instrument.NEXTSEQ500, Instrument.NEXTSEQ550, Instrument.NEXTSEQ1000, Instrument.NEXTSEQ2000),
    "nextseq1k2k": (Instrument.NEXTSEQ1000, Instrument.NEXTSEQ2000),
    "nextseq5xx": (Instrument.NEXTSEQ500, Instrument.NEXTSEQ550),
    "novaseq": (Instrument.NOVASEQ6000, Instrument.NOVASEQX),
    "hiseq": (
        Instrument.HISEQ2000,
        Instrument.HISEQ2500,
        Instrument.HISEQ3000,
        Instrument.HISEQ4000,
        Instrument.HISEQX,
    ),
}


class UnknownInstrumentError(SeqferryError, ValueError):
    """A sequencer path whose instrument cannot be determined; the message names the path and the choices."""


def _folder_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def instrument_for_folder(name: str) -> Instrument | None:
    """The instrument a folder's own name designates exactly (``miseq``, ``NovaSeq_6000``, ``iseq``), else None."""
    key = _folder_key(name)
    try:
        return Instrument(key)
    except ValueError:
        return _FOLDER_NAMES.get(key)


def candidates_for_folder(name: str) -> tuple[Instrument, ...]:
    """The instruments a family folder name (``nextseq``, ``novaseq``, ``hiseq``) could hold; empty otherwise."""
    return _FAMILIES.get(_folder_key(name), ())


def tags() -> str:
    return ", ".join(i.value for i in Instrument)


def instruments_for_run_folder(run_id: str) -> list[Instrument]:
    """Every instrument whose run-folder pattern ``run_id`` matches (models of one family share a pattern)."""
    return [instrument for instrument, spec in REGISTRY.items() if spec.folder_pattern.match(run_id)]


def behaviour(instrument: Instrument) -> tuple[str, BasecallLayout, tuple[str, ...]]:
    spec = REGISTRY[instrument]
    return spec.date_format, spec.basecalls, spec.markers


def instrument_of_run_folder(run_id: str) -> Instrument | None:
    """The instrument a run-folder name identifies, when every matching model behaves the same (else None)."""
    found = instruments_for_run_folder(run_id)
    if not found or len({behaviour(i) for i in found}) != 1:
        return None
    return found[0]


def checked_folder(value: str, what: str = "sequencer path") -> str:
    """An absolute, normalized NAS folder (not a pattern), without a trailing '/'; raises ValueError naming
    ``what`` and the problem."""
    try:
        validate_pattern(value)
    except PatternError as exc:
        raise ValueError(f"{what} {exc}") from exc
    if value.endswith("*"):
        raise ValueError(f"{what} must be a folder, not a pattern: {value}")
    return value.rstrip("/") or "/"


class SequencerPath(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    instrument: Instrument

    @field_validator("path")
    @classmethod
    def _absolute_normalized(cls, value: str) -> str:
        return checked_folder(value)

    @property
    def spec(self) -> InstrumentSpec:
        return REGISTRY[self.instrument]

    @property
    def date_format(self) -> str:
        return self.instrument.date_format


def _untagged(position: int, path: str) -> Instrument:
    folder = path.rstrip("/").rsplit("/", 1)[-1]
    found = instrument_for_folder(folder)
    if found is not None:
        return found
    family = candidates_for_folder(folder)
    why = (
        f"{folder!r} could be any of {', '.join(i.value for i in family)}"
        if family
        else f"{folder!r} names no instrument"
    )
    raise UnknownInstrumentError(
        f"sequencer path #{position} {path!r}: cannot tell which instrument writes here ({why}); "
        f"tag it as '{path}=<instrument>' with one of: {tags()}"
    )


def parse_sequencer_paths(value: str) -> list[SequencerPath]:
    """Parse ``path[=instrument],...``; raises ValueError naming the bad entry and the tags to choose from."""
    paths: list[SequencerPath] = []
    for position, raw in enumerate(value.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        path, _, tag = entry.partition("=")
        try:
            path = checked_folder(path.strip())
        except ValueError as exc:
            raise ValueError(f"sequencer path #{position} {entry!r}: {exc}") from None
        instrument: Instrument
        if tag.strip():
            try:
                instrument = Instrument(tag.strip().lower())
            except ValueError:
                raise UnknownInstrumentError(
                    f"sequencer path #{position} {entry!r}: unknown instrument {tag.strip()!r}; choose one of: {tags()}"
                ) from None
        elif tag or "=" in entry:
            raise UnknownInstrumentError(
                f"sequencer path #{position} {entry!r}: empty instrument tag; choose one of: {tags()}"
            )
        else:
            instrument = _untagged(position, path)
        paths.append(SequencerPath(path=path, instrument=instrument))
    if not paths:
        raise ValueError("no sequencer paths configured")
    seen: dict[str, int] = {}
    for position, sequencer in enumerate(paths, start=1):
        if sequencer.path in seen:
            raise ValueError(f"sequencer path #{position} {sequencer.path!r} is also path #{seen[sequencer.path]}")
        seen[sequencer.path] = position
    return paths


def run_of(path: str, roots: Iterable[SequencerPath]) -> tuple[SequencerPath, str] | None:
    """The sequencer root and run-folder name a NAS path belongs to, if any."""
    for root in roots:
        prefix = root.path.rstrip("/") + "/"
        if path.startswith(prefix):
            run = path[len(prefix) :].split("/", 1)[0]
            if run:
                return root, run
    return None
