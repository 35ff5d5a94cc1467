from pathlib import Path

import pytest

from seqferry_notifier.domain.runinfo import Read, RunInfo, RunInfoError, cycle_blockers, parse_run_info
from seqferry_shared.sequencers import Instrument

REFERENCE = Path(__file__).resolve().parents[4] / "tests/reference/illumina"


def runinfo_xml(cycles: list[int], lanes: int = 1) -> bytes:
    reads = "".join(
        f'<Read Number="{i}" NumCycles="{c}" IsIndexedRead="{"Y" if i == 2 else "N"}"/>'
        for i, c in enumerate(cycles, start=1)
    )
    return (
        f'<?xml version="1.0"?><RunInfo Version="2"><Run Id="R" Number="1"><Reads>{reads}</Reads>'
        f'<FlowcellLayout LaneCount="{lanes}" SurfaceCount="2" SwathCount="1" TileCount="2"/></Run></RunInfo>'
    ).encode()


@pytest.mark.parametrize(
    ("folder", "cycles", "lanes"),
    [
        ("miseq_140211_M00612_0148_000000000-A7M8N", 56, 1),
        ("nextseq500_160404_NS500318_0141_AHW37NBGXX", 87, 4),
        ("novaseq6000_240802_A01934_0156_AHJF77DRX5", 328, 2),
    ],
)
def test_parses_real_runinfo_files(folder: str, cycles: int, lanes: int) -> None:
    path = REFERENCE / folder / "RunInfo.xml"
    if not path.exists():
        pytest.skip(f"reference file {path} not present on this machine")
    info = parse_run_info(path.read_bytes())
    assert info.total_cycles == cycles
    assert info.lane_count == lanes
    assert info.run_id == folder.split("_", 1)[1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<RunInfo><Run", "not well-formed"),
        (b"<RunInfo/>", "no <Run>"),
        (b'<RunInfo><Run Id="x"><Reads/></Run></RunInfo>', "no <Read>"),
        (b'<RunInfo><Run Id="x"><Reads><Read Number="1" NumCycles="many"/></Reads></Run></RunInfo>', "NumCycles"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><RunInfo><Run>&a;</Run></RunInfo>', "not well-formed"),
    ],
)
def test_bad_runinfo_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(RunInfoError, match=message):
        parse_run_info(data)


def folder_keys(lanes: int, cycles: int, skip: tuple[int, int] | None = None) -> list[str]:
    keys = ["RunInfo.xml"]
    for lane in range(1, lanes + 1):
        for cycle in range(1, cycles + 1):
            if (lane, cycle) != skip:
                keys.append(f"Data/Intensities/BaseCalls/L{lane:03d}/C{cycle}.1/L{lane:03d}_1.cbcl")
                keys.append(f"Data/Intensities/BaseCalls/L{lane:03d}/C{cycle}.1/L{lane:03d}_2.cbcl")
    return keys


INFO = RunInfo(run_id="R", reads=(Read(1, 3, False), Read(2, 2, True)), lane_count=2)


def test_every_lane_with_every_cycle_is_consistent() -> None:
    assert cycle_blockers(INFO, folder_keys(2, 5), Instrument.NOVASEQ6000) == []


def test_a_missing_cycle_folder_blocks() -> None:
    blockers = cycle_blockers(INFO, folder_keys(2, 5, skip=(2, 4)), Instrument.NOVASEQ6000)
    assert blockers == ["lane 2: 4 of 5 cycles present, missing cycle(s) 4"]


def test_a_missing_lane_and_extra_cycles_block() -> None:
    keys = folder_keys(1, 6)
    blockers = cycle_blockers(INFO, keys, Instrument.NOVASEQ6000)
    assert "lane 2: 0 of 5 cycles present, missing cycle(s) 1, 2, 3, 4, 5" in blockers
    assert "lane 1: cycle(s) 6 beyond RunInfo.xml's 5" in blockers


def test_no_base_calls_at_all_blocks() -> None:
    assert cycle_blockers(INFO, ["RunInfo.xml", "RTAComplete.txt"], Instrument.MISEQ)[0].startswith("no base-call")


def test_bgzf_layout_for_nextseq500() -> None:
    info = parse_run_info(runinfo_xml([3, 2], lanes=4))
    keys = [f"Data/Intensities/BaseCalls/L{lane:03d}/{c:04d}.bcl.bgzf" for lane in range(1, 5) for c in range(1, 6)]
    keys += [f"Data/Intensities/BaseCalls/L{lane:03d}/s_{lane}.bci" for lane in range(1, 5)]
    assert cycle_blockers(info, keys, Instrument.NEXTSEQ500) == []
    # The folder layout does not count for an instrument that writes one file per cycle.
    assert cycle_blockers(info, folder_keys(4, 5), Instrument.NEXTSEQ500)[0].startswith("no base-call")
    # An unidentified instrument accepts either layout.
    assert cycle_blockers(info, keys, None) == []
