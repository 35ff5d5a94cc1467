"""How big each fault scenario is (``short`` in ``make test``, ``soak`` in ``make faults``) and what it measured.

Every scenario records one row per fault it injected — what, how, how many times, what was lost, what was
duplicated, how long recovery took — into ``SEQFERRY_FAULTS_REPORT`` (JSON lines) when that is set;
``report.py`` turns the rows of one run into ``docs/reliability.md``. A row is recorded before the test asserts,
so a failing run reports what it measured too.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROFILES = ("short", "soak")


@dataclass(frozen=True)
class Profile:
    name: str
    # announcements: the two realistic runs (instrument, reads, flow cell)
    miseq: tuple[str, str] = ("26,8,26", "v2-micro")
    novaseq: tuple[str, str] = ("26,8,26", "S1")
    # crashes
    executor_kills: int = 3
    notifier_kills: int = 1
    adhoc_kills: int = 1
    scheduler_kills: int = 2
    big_files: int = 2
    big_file_mib: int = 24
    # outage and throttling
    outage_s: float = 6.0
    outage_modes: tuple[str, ...] = ("reset",)
    throttle_rate: float = 0.2
    throttle_run: tuple[str, str] = ("6,6", "v2-nano")
    # duplicates and poison
    copies: int = 3
    # load
    requests: int = 30
    manifests: int = 6

    @classmethod
    def named(cls, name: str) -> Profile:
        if name not in PROFILES:
            raise ValueError(f"SEQFERRY_FAULTS_PROFILE must be one of {PROFILES}, got {name!r}")
        if name == "short":
            return cls(name=name)
        return cls(
            name=name,
            miseq=("26,8,26", "v2"),
            novaseq=("51,8,8,51", "S1"),
            executor_kills=10,
            notifier_kills=10,
            adhoc_kills=5,
            scheduler_kills=5,
            big_files=4,
            big_file_mib=64,
            outage_s=30.0,
            outage_modes=("reset", "blackhole"),
            throttle_run=("26,8,26", "v2"),
            requests=1000,
            manifests=200,
        )


@dataclass
class Row:
    scenario: str
    fault: str
    injected: str
    count: int
    lost: int
    duplicated: int
    recovery_s: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Collects a test's measurements; appends them to the report file (if any) when the test ends."""

    def __init__(self, test: str, profile: Profile, path: Path | None) -> None:
        self.test = test
        self.profile = profile
        self.path = path
        self.rows: list[Row] = []
        self.started = time.time()

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def flush(self, outcome: str, failure: str = "") -> None:
        if self.path is None:
            return
        if not self.rows and outcome != "passed":
            # failed before it measured anything: still one row, so the report cannot read "all passed"
            reason = failure.strip().splitlines()[0][:300] if failure.strip() else outcome
            self.rows.append(Row("failed", self.test.rsplit("::", 1)[-1], "(not measured)", 0, 0, 0, notes=reason))
        if not self.rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            for row in self.rows:
                record = {
                    "test": self.test,
                    "profile": self.profile.name,
                    "outcome": outcome,
                    "duration_s": round(time.time() - self.started, 1),
                    **asdict(row),
                }
                out.write(json.dumps(record) + "\n")


def report_path() -> Path | None:
    value = os.environ.get("SEQFERRY_FAULTS_REPORT")
    return Path(value) if value else None
