"""The local engine's finality rules against the way every instrument writes its run folder (the simulator's
timeline): a file judged final is never written again, and base calls are judged final early — each cycle's files
before the run ends, files whose header gives their length as soon as they are whole.

This is what makes early sending safe to rely on for latency: a wrong verdict would only cost a second upload (every
upload is checked unchanged afterwards and any later change is sent again), but it would show as write amplification.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from seqferry_executor.backends.local.finality import Finality, RunFolders, complete
from seqferry_executor.backends.local.scan import Scanner
from seqferry_shared.patterns import Matcher
from seqferry_shared.sequencers import Instrument, parse_sequencer_paths
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.profiles import PROFILES
from seqferry_simulator.domain.spec import CompletionStatus, RunStop, new_run_spec
from seqferry_simulator.writer import RunWriter

STARTED = datetime(2025, 11, 25, 14, 3, 7, tzinfo=ZoneInfo("UTC"))
SMALL = {instrument: min(p.flowcells.values(), key=lambda f: f.tile_count).name for instrument, p in PROFILES.items()}
CYCLE_FILE = re.compile(r"Data/Intensities/BaseCalls/L\d{3}/(?:C(\d+)\.1/|(\d{4})\.bcl\.bgzf$)")


@dataclass
class Replay:
    instrument: Instrument
    steps: int = 0
    first_marker_step: int | None = None
    # file (relative to the run folder) -> (step it was judged final, what it was then)
    final: dict[str, tuple[int, tuple[int, int, str]]] = field(default_factory=dict)
    changed_after_final: list[str] = field(default_factory=list)
    cycles: int = 0


def state(path: Path) -> tuple[int, int, str]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def judge(nas: Path, instrument: Instrument, run_folder: Path) -> dict[str, bool]:
    """Every file of the run folder and whether the engine would take it as final now."""
    sequencers = parse_sequencer_paths(f"/seq/{instrument.value}={instrument.value}")
    runs = RunFolders(sequencers)
    verdicts: dict[str, bool] = {}
    for scan in Scanner(nas).walk(Matcher.of([f"/seq/{instrument.value}"])):
        runs.observe(scan)
        for entry, _ in scan.candidates:
            verdict = runs.verdict(entry)
            final = verdict is Finality.FINAL
            if verdict is Finality.COMPLETE_WHEN_FULL:
                fd = os.open(nas / entry.source, os.O_RDONLY)
                try:
                    final = complete(fd, entry)
                finally:
                    os.close(fd)
            verdicts[str((nas / entry.source).relative_to(run_folder))] = final
    return verdicts


def replay(instrument: Instrument, tmp_path: Path, stop: RunStop | None = None) -> Replay:
    spec = new_run_spec(
        instrument, seed=5, started_at=STARTED, reads="8,2,2,8", flowcell=SMALL[instrument], scale=1e-5, stop=stop
    )
    nas = tmp_path / "nas"
    writer = RunWriter(spec, nas / "seq" / instrument.value, Pace.of("10", spec.profile.cadence))
    seen = Replay(instrument, cycles=spec.cycles_written)
    while writer.step() is not None:
        seen.steps += 1
        if seen.first_marker_step is None and (writer.folder / instrument.markers[0]).exists():
            seen.first_marker_step = seen.steps
        for name, (_, then) in seen.final.items():
            if state(writer.folder / name) != then and name not in seen.changed_after_final:
                seen.changed_after_final.append(name)
        for name, final in judge(nas, instrument, writer.folder).items():
            if final and name not in seen.final:
                seen.final[name] = (seen.steps, state(writer.folder / name))
    return seen


@pytest.mark.parametrize("instrument", list(PROFILES), ids=lambda i: i.value)
def test_no_file_judged_final_is_ever_written_again(instrument: Instrument, tmp_path: Path) -> None:
    # GIVEN a run written step by step in the instrument's order, judged after every step
    seen = replay(instrument, tmp_path)
    # THEN nothing judged final changed afterwards
    assert seen.changed_after_final == []
    # ... and every base-call file of every cycle was judged final before RTA finished the run
    assert seen.first_marker_step is not None
    basecalls = {name for name in seen.final if CYCLE_FILE.match(name)}
    early = {name for name in basecalls if seen.final[name][0] < seen.first_marker_step}
    cycles = {int(next(g for g in CYCLE_FILE.match(name).groups() if g)) for name in early}  # type: ignore[union-attr]
    assert cycles >= set(range(1, seen.cycles)), f"cycles judged final early: {sorted(cycles)}"


def test_a_run_that_stops_mid_way_is_judged_the_same_way(tmp_path: Path) -> None:
    # GIVEN a NovaSeq X run the instrument stops after 6 of its 20 cycles
    seen = replay(Instrument.NOVASEQX, tmp_path, RunStop(6, CompletionStatus.EXCEPTION_ENDED_EARLY))
    # THEN again nothing judged final changed, and the cycles it wrote were final before its markers
    assert seen.changed_after_final == []
    assert seen.first_marker_step is not None
    early = {name for name, (step, _) in seen.final.items() if CYCLE_FILE.match(name) and step < seen.first_marker_step}
    assert early
