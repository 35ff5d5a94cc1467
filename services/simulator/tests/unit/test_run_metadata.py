"""RunInfo.xml, RunParameters.xml, completion files and sample sheets, compared with real instrument files."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.markers import marker_content
from seqferry_simulator.domain.profiles import PROFILES
from seqferry_simulator.domain.runinfo import run_info_xml
from seqferry_simulator.domain.runparams import run_parameters_xml
from seqferry_simulator.domain.samplesheet import sample_sheet
from seqferry_simulator.domain.spec import new_run_spec

STARTED = datetime(2025, 11, 25, 14, 3, 7, tzinfo=ZoneInfo("Europe/Berlin"))
# instrument, reference folder, its RunParameters file, the reference run's flow cell and reads
WITH_REFERENCE = [
    (Instrument.MISEQ, "miseq_140211_M00612_0148_000000000-A7M8N", "runParameters.xml", "v2", "50,6"),
    (Instrument.NEXTSEQ500, "nextseq500_160404_NS500318_0141_AHW37NBGXX", "RunParameters.xml", "high", "81,6"),
    (Instrument.NOVASEQ6000, "novaseq6000_240802_A01934_0156_AHJF77DRX5", "RunParameters.xml", "S1", "151,18,8,151"),
]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("instrument", "folder", "params", "flowcell", "reads"), WITH_REFERENCE)
def test_metadata_has_the_reference_shape(
    tmp_path: Path,
    reference_dir: Path,
    xml_shape: Callable[[Path], set[Any]],
    instrument: Instrument,
    folder: str,
    params: str,
    flowcell: str,
    reads: str,
) -> None:
    # GIVEN a run of the reference's instrument, flow cell and read structure
    spec = new_run_spec(instrument, seed=3, started_at=STARTED, flowcell=flowcell, reads=reads)
    reference = reference_dir / folder
    run_info = _write(tmp_path, "RunInfo.xml", run_info_xml(spec))
    run_params = _write(tmp_path, params, run_parameters_xml(spec))
    # THEN the same elements and attributes as the instrument's own files
    assert xml_shape(run_info) == xml_shape(reference / "RunInfo.xml")
    assert xml_shape(run_params) == xml_shape(reference / params)
    assert spec.profile.run_parameters_file == params
    # AND the same line endings (Windows instruments write CRLF)
    for mine, theirs in ((run_info, reference / "RunInfo.xml"), (run_params, reference / params)):
        assert (b"\r\n" in mine.read_bytes()) == (b"\r\n" in theirs.read_bytes()), mine.name
    # AND the tile list matches the reference tile for tile (same geometry, same order)
    assert _tiles(run_info) == _tiles(reference / "RunInfo.xml")


def _tiles(path: Path) -> list[str]:
    return [t.text or "" for t in ET.parse(path).getroot().iter("Tile")]


def test_nextseq500_completion_status_has_the_reference_shape(
    tmp_path: Path, reference_dir: Path, xml_shape: Callable[[Path], set[Any]]
) -> None:
    spec = new_run_spec(Instrument.NEXTSEQ500, seed=3, started_at=STARTED, reads="81,6")
    mine = _write(tmp_path, "RunCompletionStatus.xml", marker_content(spec, "RunCompletionStatus.xml", STARTED))
    theirs = reference_dir / "nextseq500_160404_NS500318_0141_AHW37NBGXX/RunCompletionStatus.xml"
    assert xml_shape(mine) == xml_shape(theirs)


def test_miseq_rta_complete_has_the_reference_format(reference_dir: Path) -> None:
    spec = new_run_spec(Instrument.MISEQ, seed=3, started_at=STARTED)
    text = marker_content(spec, "RTAComplete.txt", datetime(2014, 2, 11, 17, 25, 13, 217000, tzinfo=ZoneInfo("UTC")))
    reference = (reference_dir / "miseq_140211_M00612_0148_000000000-A7M8N/RTAComplete.txt").read_bytes()
    assert text.split(b",")[:2] == reference.split(b",")[:2]
    assert text.endswith(b"\r\n")
    assert text.startswith(b"2/11/2014,17:25:13.217,Illumina RTA 1.")


@pytest.mark.parametrize("instrument", [Instrument.ISEQ100, Instrument.NEXTSEQ2000, Instrument.NOVASEQX])
def test_metadata_without_reference_is_self_consistent(
    tmp_path: Path, read_run_info: Callable[[Path], Any], instrument: Instrument
) -> None:
    # GIVEN an instrument without a reference folder
    spec = new_run_spec(instrument, seed=5, started_at=STARTED)
    info = read_run_info(_write(tmp_path, "RunInfo.xml", run_info_xml(spec)))
    fc = spec.flowcell
    # THEN RunInfo agrees with itself and with the run
    assert info.run_id == spec.run_id
    assert info.number == spec.identity.run_number
    assert info.flowcell == spec.identity.flowcell_id
    assert info.instrument == spec.identity.serial
    assert (info.lanes, info.surfaces, info.swaths, info.tile_count) == (
        fc.lanes,
        fc.surfaces,
        fc.swaths,
        fc.tiles_per_swath,
    )
    assert len(info.tiles) == len(set(info.tiles)) == fc.lanes * fc.surfaces * fc.swaths * fc.tiles_per_swath
    assert {t // 1000 for _, t in info.tiles} == set(range(1, fc.surfaces + 1))
    assert [c for _, c, _ in info.reads] == [r.cycles for r in spec.reads.reads]
    text = run_info_xml(spec).decode()
    assert f'Version="{spec.profile.run_info_version}"' in text
    assert text.count("<Name>") == 2
    # AND RunParameters names the same run and flow cell
    params = run_parameters_xml(spec).decode()
    assert spec.run_id in params
    assert spec.identity.flowcell_id in params


def test_nextseq2000_rewrites_run_parameters_at_the_end() -> None:
    spec = new_run_spec(Instrument.NEXTSEQ2000, seed=5, started_at=STARTED, reads="26,8,8,26")
    at_start = run_parameters_xml(spec).decode()
    at_end = run_parameters_xml(spec, ended_at=datetime(2025, 11, 26, 9, 0, tzinfo=ZoneInfo("UTC"))).decode()
    assert "<RunEndTime>0001-01-01T00:00:00Z</RunEndTime>" in at_start
    assert "<RunEndTime>2025-11-26T09:00:00Z</RunEndTime>" in at_end
    assert "<CompletedCycles>\n    <Read1>26</Read1>" in at_end


@pytest.mark.parametrize("instrument", list(PROFILES))
def test_sample_sheet_version_and_indexes(instrument: Instrument) -> None:
    spec = new_run_spec(instrument, seed=9, started_at=STARTED, reads="51,8,10,51")
    text = sample_sheet(spec).decode()
    v2 = spec.family in (Instrument.NEXTSEQ2000, Instrument.NOVASEQX)
    if v2:
        assert "FileFormatVersion,2" in text
        data = text.split("[BCLConvert_Data]\n", 1)[1]
        rows = list(csv.DictReader(io.StringIO(data)))
        assert {len(r["Index"]) for r in rows} == {8}
        assert {len(r["Index2"]) for r in rows} == {10}
        assert {int(r["Lane"]) for r in rows} == set(range(1, spec.flowcell.lanes + 1))
    else:
        assert text.startswith("[Header],")
        assert "IEMFileVersion,4" in text
        data = text.split("[Data]", 1)[1].split("\r\n", 1)[1]
        rows = [r for r in csv.DictReader(io.StringIO(data.replace("\r\n", "\n"))) if r["Sample_ID"]]
        assert {len(r["index"]) for r in rows} == {8}
        assert {len(r["index2"]) for r in rows} == {10}
        assert len({(r["index"], r["index2"]) for r in rows}) == len(rows)
        reads_section = text.split("[Reads]", 1)[1].split("[Settings]", 1)[0]
        assert [line.strip(",") for line in reads_section.split("\r\n") if line.strip(",")] == ["51", "51"]


def test_reference_sample_sheet_sections_match(reference_dir: Path) -> None:
    spec = new_run_spec(Instrument.MISEQ, seed=9, started_at=STARTED)
    mine = [line.split(",")[0] for line in sample_sheet(spec).decode().split("\r\n") if line.startswith("[")]
    theirs = reference_dir / "samplesheets/v1_miseq_illuminate_140211.csv"
    sections = [line.split(",")[0] for line in theirs.read_text().splitlines() if line.startswith("[")]
    assert mine == sections
