"""Run-folder names: ``<date>_<instrument serial>_<run number>_<side><flow cell id>``."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import datetime

from seqferry_simulator.domain.errors import SpecError
from seqferry_simulator.domain.profiles import FlowcellType, InstrumentProfile

_ALNUM = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class RunIdentity:
    date: str  # as the folder name spells it (2- or 4-digit year)
    serial: str
    run_number: int
    side: str
    flowcell_id: str
    run_number_digits: int

    @property
    def run_id(self) -> str:
        number = f"{self.run_number:0{self.run_number_digits}d}" if self.run_number_digits else str(self.run_number)
        return f"{self.date}_{self.serial}_{number}_{self.side}{self.flowcell_id}"


def serial_for(profile: InstrumentProfile, rng: random.Random) -> str:
    digits = "".join(rng.choice(string.digits) for _ in range(profile.serial_digits))
    return f"{profile.serial_prefix}{digits}"


def flowcell_id_for(flowcell: FlowcellType, rng: random.Random) -> str:
    out = []
    for char in flowcell.id_template:
        if char == "?":
            out.append(rng.choice(_ALNUM))
        elif char == "#":
            out.append(rng.choice(string.digits))
        else:
            out.append(char)
    return "".join(out)


def check_serial(profile: InstrumentProfile, serial: str) -> str:
    rest = serial[len(profile.serial_prefix) :]
    if not serial.startswith(profile.serial_prefix) or len(rest) != profile.serial_digits or not rest.isdigit():
        example = profile.serial_prefix + "0" * profile.serial_digits
        raise SpecError("serial", f"{profile.label} serials look like {example!r}, got {serial!r}")
    return serial


def identity(
    profile: InstrumentProfile,
    *,
    started_at: datetime,
    serial: str,
    run_number: int,
    flowcell_id: str,
    side: str,
) -> RunIdentity:
    limit = 10**profile.run_number_digits - 1 if profile.run_number_digits else 99999
    if not 1 <= run_number <= limit:
        raise SpecError("run_number", f"must be between 1 and {limit} for {profile.label}, got {run_number}")
    if side not in (profile.sides or "") or len(side) != (1 if profile.sides else 0):
        raise SpecError("side", f"{profile.label} runs use side one of {profile.sides!r}, got {side!r}")
    return RunIdentity(
        date=started_at.strftime(profile.instrument.date_format),
        serial=check_serial(profile, serial),
        run_number=run_number,
        side=side,
        flowcell_id=flowcell_id,
        run_number_digits=profile.run_number_digits,
    )
