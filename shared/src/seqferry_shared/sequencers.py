"""Sequencer output paths and what seqferry knows about each instrument family.

``SEQFERRY_SEQUENCER_PATHS`` is a comma-separated list of NAS-absolute folders, one per instrument, each
optionally tagged with its instrument: ``/sequencers/incoming/miseq=miseq,/sequencers/incoming/x=novaseqx``.
Untagged paths are recognised from their last segment (as the reference did), falling back to a 2-digit year.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

from seqferry_shared.patterns import PatternError, validate_pattern

DEFAULT_SEQUENCER_PATHS = (
    "/sequencers/incoming/iseq,/sequencers/incoming/nextseq,/sequencers/incoming/miseq,/sequencers/incoming/nextseq2000"
)


class Instrument(StrEnum):
    MISEQ = "miseq"
    ISEQ100 = "iseq100"
    NEXTSEQ500 = "nextseq500"
    NEXTSEQ2000 = "nextseq2000"
    NOVASEQ6000 = "novaseq6000"
    NOVASEQX = "novaseqx"

    @property
    def date_format(self) -> str:
        """strftime format of the date that starts this instrument's run-folder names."""
        return "%Y%m%d" if self in (Instrument.ISEQ100, Instrument.NOVASEQX) else "%y%m%d"

    @property
    def completion_marker(self) -> str:
        """The last file the instrument writes into a finished run folder."""
        return COMPLETION_MARKERS[self]

    @property
    def run_folder_pattern(self) -> re.Pattern[str]:
        return RUN_FOLDER_PATTERNS[self]


COMPLETION_MARKERS: dict[Instrument, str] = {
    Instrument.MISEQ: "RTAComplete.txt",
    Instrument.NEXTSEQ500: "RunCompletionStatus.xml",
    Instrument.ISEQ100: "CopyComplete.txt",
    Instrument.NEXTSEQ2000: "CopyComplete.txt",
    Instrument.NOVASEQ6000: "CopyComplete.txt",
    Instrument.NOVASEQX: "CopyComplete.txt",
}

RUN_FOLDER_PATTERNS: dict[Instrument, re.Pattern[str]] = {
    Instrument.MISEQ: re.compile(r"^\d{6}_M\d{5}_\d{4}_0{9}-[A-Z0-9]{5}$"),
    Instrument.ISEQ100: re.compile(r"^\d{8}_FS\d{8}_\d+_[A-Z0-9-]+$"),
    Instrument.NEXTSEQ500: re.compile(r"^\d{6}_N[BS]\d{6}_\d{4}_A[A-Z0-9]{9}$"),
    Instrument.NEXTSEQ2000: re.compile(r"^\d{6}_VH\d{5}_\d+_[A-Z0-9]+$"),
    Instrument.NOVASEQ6000: re.compile(r"^\d{6}_A\d{5}_\d{4}_[AB][A-Z0-9]{9}$"),
    Instrument.NOVASEQX: re.compile(r"^\d{8}_LH\d{5}_\d{4}_[AB]?[A-Z0-9]{7,10}$"),
}

# Substring sniffing for untagged paths, most specific first.
_SNIFF: tuple[tuple[str, Instrument], ...] = (
    ("nextseq2000", Instrument.NEXTSEQ2000),
    ("nextseq1000", Instrument.NEXTSEQ2000),
    ("novaseqx", Instrument.NOVASEQX),
    ("novaseq_x", Instrument.NOVASEQX),
    ("novaseq-x", Instrument.NOVASEQX),
    ("novaseq", Instrument.NOVASEQ6000),
    ("nextseq", Instrument.NEXTSEQ500),
    ("miseq", Instrument.MISEQ),
    ("iseq", Instrument.ISEQ100),
)


def sniff_instrument(path: str) -> Instrument | None:
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    for needle, instrument in _SNIFF:
        if needle in name:
            return instrument
    return None


class SequencerPath(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    instrument: Instrument | None = None

    @field_validator("path")
    @classmethod
    def _absolute_normalized(cls, value: str) -> str:
        try:
            validate_pattern(value)
        except PatternError as exc:
            raise ValueError(f"sequencer path {exc}") from exc
        if value.endswith("*"):
            raise ValueError(f"sequencer path must be a folder, not a pattern: {value}")
        return value.rstrip("/") or "/"

    @property
    def date_format(self) -> str:
        return self.instrument.date_format if self.instrument else "%y%m%d"


def parse_sequencer_paths(value: str) -> list[SequencerPath]:
    """Parse ``path[=instrument],...``; raises ValueError naming the bad entry."""
    paths: list[SequencerPath] = []
    for position, raw in enumerate(value.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        path, _, tag = entry.partition("=")
        instrument: Instrument | None
        if tag:
            try:
                instrument = Instrument(tag.strip().lower())
            except ValueError:
                known = ", ".join(i.value for i in Instrument)
                raise ValueError(
                    f"sequencer path #{position} {entry!r}: unknown instrument {tag!r} ({known})"
                ) from None
        else:
            instrument = sniff_instrument(path)
        paths.append(SequencerPath(path=path.strip(), instrument=instrument))
    if not paths:
        raise ValueError("no sequencer paths configured")
    return paths


def run_of(path: str, roots: list[SequencerPath]) -> tuple[SequencerPath, str] | None:
    """The sequencer root and run-folder name a NAS path belongs to, if any."""
    for root in roots:
        prefix = root.path.rstrip("/") + "/"
        if path.startswith(prefix):
            run = path[len(prefix) :].split("/", 1)[0]
            if run:
                return root, run
    return None
