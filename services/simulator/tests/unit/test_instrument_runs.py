"""Every simulated instrument: a small run written step by step, checked against its own RunInfo.xml, the shared
instrument registry and Illumina's InterOp library (Q tables, a realistic share of bases at or above Q30)."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import interop
import pytest

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.profiles import PROFILES
from seqferry_simulator.domain.spec import new_run_spec
from seqferry_simulator.writer import RunWriter

STARTED = datetime(2025, 11, 25, 14, 3, 7, tzinfo=ZoneInfo("Europe/Berlin"))
MARKER_NAMES = ("RTAComplete.txt", "SequenceComplete.txt", "RunCompletionStatus.xml", "CopyComplete.txt")
# the smallest flow cell of each instrument keeps the suite fast
SMALL = {instrument: min(p.flowcells.values(), key=lambda f: f.tile_count).name for instrument, p in PROFILES.items()}
GENERATION = {instrument: instrument.basecalls.value for instrument in PROFILES}
EXPECTED_MARKERS = {instrument: list(instrument.markers) for instrument in PROFILES}


@dataclass
class Observed:
    instrument: Instrument
    folder: Path
    markers_in_order: list[str] = field(default_factory=list)
    data_at_first_marker: dict[str, int] = field(default_factory=dict)
    data_at_end: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module", params=list(PROFILES), ids=lambda i: i.value)
def observed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sizes_of: Any) -> Observed:
    instrument: Instrument = request.param
    spec = new_run_spec(
        instrument, seed=11, started_at=STARTED, reads="6,2,2,6", flowcell=SMALL[instrument], scale=1e-5
    )
    writer = RunWriter(spec, tmp_path_factory.mktemp(instrument.value), Pace.of("10", spec.profile.cadence))
    seen = Observed(instrument, writer.folder)
    while writer.step() is not None:
        present = [m for m in MARKER_NAMES if (writer.folder / m).exists()]
        new = [m for m in present if m not in seen.markers_in_order]
        assert len(new) <= 1, f"two markers appeared in one step: {new}"
        if new and not seen.markers_in_order:
            seen.data_at_first_marker = sizes_of(writer.folder, "Data")
        seen.markers_in_order += new
    seen.data_at_end = sizes_of(writer.folder, "Data")
    return seen


def test_folder_name_matches_the_instrument_pattern(observed: Observed, read_run_info: Callable[..., Any]) -> None:
    # GIVEN a generated run / THEN its folder name is what the instrument writes
    assert observed.instrument.run_folder_pattern.match(observed.folder.name), observed.folder.name
    info = read_run_info(observed.folder / "RunInfo.xml")
    assert info.run_id == observed.folder.name
    assert info.instrument in info.run_id
    assert info.flowcell in info.run_id
    assert observed.folder.name.startswith(STARTED.strftime(observed.instrument.date_format) + "_")


def test_base_call_layout_follows_run_info(observed: Observed, read_run_info: Callable[..., Any]) -> None:
    # GIVEN the run's own RunInfo.xml
    info = read_run_info(observed.folder / "RunInfo.xml")
    files = set(observed.data_at_end)
    base = "Data/Intensities/BaseCalls"
    cycles = range(1, info.total_cycles + 1)
    lanes = range(1, info.lanes + 1)
    generation = GENERATION[observed.instrument]
    # THEN exactly the base-call files that layout implies exist
    if generation == "bcl":
        expected = {f"{base}/L{lane:03d}/C{c}.1/s_{lane}_{tile}.bcl" for lane, tile in info.tiles for c in cycles}
        stats = {p[: -len(".bcl")] + ".stats" for p in expected}
        filters = {f"{base}/L{lane:03d}/s_{lane}_{tile}.filter" for lane, tile in info.tiles}
        assert {f for f in files if f.endswith(".bcl")} == expected
        assert {f for f in files if f.endswith(".stats")} == stats
        assert {f for f in files if f.endswith(".filter")} == filters
        for path in expected:
            (clusters,) = struct.unpack("<I", (observed.folder / path).read_bytes()[:4])
            assert observed.data_at_end[path] == 4 + clusters
    elif generation == "bgzf":
        expected = {f"{base}/L{lane:03d}/{c:04d}.bcl.bgzf" for lane in lanes for c in cycles}
        assert {f for f in files if f.endswith(".bcl.bgzf")} == expected
        assert {f for f in files if f.endswith(".bci")} == {f"{base}/L{lane:03d}/s_{lane}.bci" for lane in lanes}
        for lane in lanes:
            bci = (observed.folder / f"{base}/L{lane:03d}/s_{lane}.bci").read_bytes()
            pairs = list(struct.iter_unpack("<II", bci))
            assert sorted(t for t, _ in pairs) == sorted(t for la, t in info.tiles if la == lane)
            bcl = gzip.decompress((observed.folder / f"{base}/L{lane:03d}/0001.bcl.bgzf").read_bytes())
            assert struct.unpack("<I", bcl[:4])[0] == sum(n for _, n in pairs) == len(bcl) - 4
    else:
        expected = {
            f"{base}/L{lane:03d}/C{c}.1/L{lane:03d}_{s}.cbcl"
            for lane in lanes
            for c in cycles
            for s in range(1, info.surfaces + 1)
        }
        assert {f for f in files if f.endswith(".cbcl")} == expected
        filters = {f"{base}/L{lane:03d}/s_{lane}_{tile}.filter" for lane, tile in info.tiles}
        assert {f for f in files if f.endswith(".filter")} == filters
        assert len(info.tiles) == info.lanes * info.surfaces * info.swaths * info.tile_count
        # each cbcl lists the tiles of its lane and surface
        sample = (observed.folder / f"{base}/L001/C1.1/L001_1.cbcl").read_bytes()
        bins = struct.unpack_from("<I", sample, 8)[0]
        tiles_in_header = struct.unpack_from("<I", sample, 12 + 8 * bins)[0]
        assert tiles_in_header == info.swaths * info.tile_count


def test_markers_in_order_after_all_base_calls(observed: Observed) -> None:
    # THEN the markers appeared one by one, in the instrument's order, the completion marker last
    assert observed.markers_in_order == EXPECTED_MARKERS[observed.instrument]
    assert observed.markers_in_order[-1] == observed.instrument.completion_marker
    # AND no base-call file appeared or changed once the first marker was there
    assert observed.data_at_first_marker == observed.data_at_end
    assert observed.data_at_end


def test_interop_reads_the_run_and_reports_its_cycles(observed: Observed, read_run_info: Callable[..., Any]) -> None:
    info = read_run_info(observed.folder / "RunInfo.xml")
    # WHEN Illumina's InterOp library reads the folder
    metrics = interop.read(str(observed.folder))
    summary = interop.summary(str(observed.folder))
    by_read = interop.summary(metrics, "Read")
    # THEN it sees every cycle and every read
    assert metrics.run_info().total_cycles() == info.total_cycles
    assert metrics.extraction_metric_set().max_cycle() == info.total_cycles
    assert metrics.q_metric_set().max_cycle() == info.total_cycles
    assert metrics.tile_metric_set().size() == len(info.tiles)
    assert len(summary) == 1
    assert summary["Cluster Count"][0] > 0
    assert [int(r) for r in by_read["ReadNumber"]] == [n for n, _, _ in info.reads]
