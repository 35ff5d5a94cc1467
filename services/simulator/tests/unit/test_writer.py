"""The run writer: progressive, chunked writing; reproducibility; pacing."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import interop
import pytest

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.plan import Phase
from seqferry_simulator.domain.spec import new_run_spec
from seqferry_simulator.writer import RunFolderExistsError, RunWriter, drive

STARTED = datetime(2025, 11, 25, 14, 3, 7, tzinfo=ZoneInfo("Europe/Berlin"))


def _writer(
    instrument: Instrument, parent: Path, *, seed: int = 1, reads: str = "10,2,10", pace: str = "1", **kw: Any
) -> RunWriter:
    small = {Instrument.MISEQ: "v2-micro", Instrument.NOVASEQ6000: "S1"}
    spec = new_run_spec(
        instrument, seed=seed, started_at=STARTED, reads=reads, flowcell=small.get(instrument), scale=1e-5, **kw
    )
    return RunWriter(spec, parent, Pace.of(pace, spec.profile.cadence))


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("instrument", [Instrument.MISEQ, Instrument.NEXTSEQ500, Instrument.NOVASEQ6000])
def test_mid_run_sample_shows_partial_cycles_and_growing_files(
    tmp_path: Path, sizes_of: Callable[..., dict[str, int]], instrument: Instrument
) -> None:
    # GIVEN a run advanced to the middle of its sequencing, in virtual time
    writer = _writer(instrument, tmp_path)
    total = writer.spec.total_cycles
    while writer.progress.cycles_done < total // 2:
        writer.step()
    writer.step()  # one portion into the next cycle
    # WHEN the folder is sampled twice, one slot apart
    first = sizes_of(writer.folder)
    writer.step()
    second = sizes_of(writer.folder)
    # THEN some cycles are written and some are not
    assert writer.progress.phase is Phase.SEQUENCING
    assert 0 < writer.progress.cycles_done < total
    if instrument is Instrument.NEXTSEQ500:
        cycles_on_disk = {p for p in second if p.endswith(".bcl.bgzf")}
        assert 0 < len(cycles_on_disk) < total * writer.spec.flowcell.lanes
    else:
        cycle_dirs = {p.split("/")[5] for p in second if p.startswith("Data/Intensities/BaseCalls/L001/C")}
        assert 0 < len(cycle_dirs) < total
    # AND at least one file that existed already has grown (written in chunks, not at once)
    grown = [p for p in first if second.get(p, 0) > first[p] > 0]
    assert grown
    # AND no marker exists yet
    assert not any((writer.folder / m).exists() for m in ("RTAComplete.txt", "CopyComplete.txt"))


def test_interop_is_readable_mid_run_from_per_cycle_files(tmp_path: Path) -> None:
    # GIVEN a NovaSeq run stopped after 30 cycles (RTA 3 writes InterOp per cycle during the run)
    writer = _writer(Instrument.NOVASEQ6000, tmp_path, reads="40,8,40")
    while writer.progress.cycles_done < 30:
        writer.step()
    assert not (writer.folder / "InterOp/ExtractionMetricsOut.bin").exists()
    # WHEN InterOp reads it
    metrics = interop.read(str(writer.folder))
    # THEN it reports the cycles written so far, and tile metrics from cycle 26
    assert metrics.extraction_metric_set().max_cycle() == 30
    assert metrics.tile_metric_set().size() == writer.spec.flowcell.tile_count
    assert len(interop.summary(metrics)) == 1


def test_filters_appear_at_cycle_26(tmp_path: Path) -> None:
    writer = _writer(Instrument.MISEQ, tmp_path, reads="40")
    filters: list[int] = []
    while writer.step() is not None:
        if not filters and list((writer.folder / "Data/Intensities/BaseCalls/L001").glob("*.filter")):
            filters.append(writer.progress.cycles_done)
    # the first filter portions land while cycle 26 is processed
    assert filters == [25]


@pytest.mark.parametrize("instrument", [Instrument.MISEQ, Instrument.ISEQ100, Instrument.NOVASEQ6000])
def test_same_seed_same_bytes(tmp_path: Path, instrument: Instrument) -> None:
    # GIVEN two runs from the same spec, written in different places
    one = _writer(instrument, tmp_path / "one", seed=42)
    two = _writer(instrument, tmp_path / "two", seed=42)
    one.run_to_end()
    two.run_to_end()
    # THEN every file is byte-identical
    assert one.folder.name == two.folder.name
    assert _digest(one.folder) == _digest(two.folder)
    # AND another seed gives other contents
    three = _writer(instrument, tmp_path / "three", seed=43)
    three.run_to_end()
    assert _digest(three.folder) != _digest(one.folder)


def test_compressed_base_calls_are_valid_gzip(tmp_path: Path) -> None:
    writer = _writer(Instrument.NOVASEQ6000, tmp_path, reads="3")
    writer.run_to_end()
    cbcl = (writer.folder / "Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl").read_bytes()
    header_size = struct.unpack_from("<I", cbcl, 2)[0]
    bins = struct.unpack_from("<I", cbcl, 8)[0]
    tiles = struct.unpack_from("<I", cbcl, 12 + 8 * bins)[0]
    records = [struct.unpack_from("<IIII", cbcl, 16 + 8 * bins + 16 * i) for i in range(tiles)]
    offset = header_size
    for _, clusters, uncompressed, compressed in records:
        block = gzip.decompress(cbcl[offset : offset + compressed])
        assert len(block) == uncompressed == (clusters + 1) // 2
        offset += compressed
    assert offset == len(cbcl)


def test_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    writer = _writer(Instrument.MISEQ, tmp_path)
    writer.folder.mkdir(parents=True)
    with pytest.raises(RunFolderExistsError):
        writer.step()


async def test_drive_writes_each_slot_when_its_time_has_come(tmp_path: Path) -> None:
    # GIVEN a clock that jumps 7 s at every reading, so the driver never needs to sleep
    writer = _writer(Instrument.MISEQ, tmp_path, reads="4")
    readings = iter(range(0, 10_000, 7))
    seen: list[tuple[float, float]] = []
    original = writer.advance_to

    def advance(seconds: float) -> int:
        seen.append((seconds, writer.next_time() or 0.0))
        return original(seconds)

    writer.advance_to = advance  # type: ignore[method-assign]
    # WHEN the driver runs the plan
    finished = await drive(writer, clock=lambda: float(next(readings)))
    # THEN every advance happened at or after the slot's planned time, and the run completed
    assert finished
    assert writer.done
    assert all(now >= due for now, due in seen)
    assert (writer.folder / "RTAComplete.txt").exists()


async def test_drive_sleeps_until_slots_are_due(tmp_path: Path) -> None:
    writer = _writer(Instrument.MISEQ, tmp_path, reads="3", pace="200")
    assert await asyncio.wait_for(drive(writer), 10)
    assert writer.done


async def test_drive_stops_when_asked(tmp_path: Path) -> None:
    writer = _writer(Instrument.MISEQ, tmp_path, reads="40")
    stop = asyncio.Event()
    task = asyncio.create_task(drive(writer, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(task, 5) is False
    assert not writer.done
