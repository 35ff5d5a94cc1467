"""What outside judges make of simulated runs: Illumina's InterOp reads realistic quality, BCL Convert would accept
the sample sheet, and a stopped run looks like a stopped run."""

from __future__ import annotations

import csv
import io
import itertools
import struct
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import interop
import pytest

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.interop_files import QUALITY, InteropMetrics
from seqferry_simulator.domain.markers import written_markers
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.profiles import PROFILES, Rta
from seqferry_simulator.domain.samplesheet import MIN_INDEX_DISTANCE, hamming, sample_sheet
from seqferry_simulator.domain.spec import CompletionStatus, RunSpec, RunStop, new_run_spec
from seqferry_simulator.writer import RunWriter

STARTED = datetime(2025, 11, 25, 14, 3, 7, tzinfo=ZoneInfo("Europe/Berlin"))
SMALL = {instrument: min(p.flowcells.values(), key=lambda f: f.tile_count).name for instrument, p in PROFILES.items()}
# The reference NovaSeq 6000 run's QMetricsOut.bin (240802_A01934_0156_AHJF77DRX5) starts with these bytes: version 7,
# record size 20, binned, 3 bins, then (low, high, value) per bin.
NOVASEQ6000_Q_HEADER = bytes.fromhex("0714010302110b121d191e2825")
Q30_RANGE = (70.0, 95.0)


def write(spec: RunSpec, folder: Path) -> Path:
    writer = RunWriter(spec, folder, Pace.of("10", spec.profile.cadence))
    writer.run_to_end()
    return writer.folder


@pytest.fixture(scope="module")
def q30_by_instrument(tmp_path_factory: pytest.TempPathFactory) -> dict[Instrument, float]:
    measured: dict[Instrument, float] = {}
    for instrument in PROFILES:
        spec = new_run_spec(
            instrument, seed=21, started_at=STARTED, reads="51,8,8,51", flowcell=SMALL[instrument], scale=1e-5
        )
        folder = write(spec, tmp_path_factory.mktemp(instrument.value))
        # WHEN Illumina's InterOp library summarises the run folder
        measured[instrument] = float(interop.summary(str(folder))["% >= Q30"][0])
    return measured


@pytest.mark.parametrize("instrument", list(PROFILES), ids=lambda i: i.value)
def test_interop_reports_a_realistic_q30_share(
    instrument: Instrument, q30_by_instrument: dict[Instrument, float]
) -> None:
    # THEN the share of bases at or above Q30 is what real runs show, not 100 % (a misread Q table) or less
    low, high = Q30_RANGE
    assert low <= q30_by_instrument[instrument] <= high, q30_by_instrument


@pytest.mark.parametrize("instrument", list(PROFILES), ids=lambda i: i.value)
def test_q_table_is_written_as_interop_expects(instrument: Instrument) -> None:
    spec = new_run_spec(instrument, seed=3, started_at=STARTED, reads="26", flowcell=SMALL[instrument], scale=1e-4)
    metrics = InteropMetrics(spec)
    header = metrics.header(QUALITY)
    rta = spec.profile.rta
    if rta is Rta.RTA3:
        # version 7: the same bytes as a real NovaSeq 6000 file
        assert header == NOVASEQ6000_Q_HEADER
    elif rta is Rta.RTA2:
        # version 6: all lows, all highs, all values
        version, size, binned, count = struct.unpack_from("<BBBB", header)
        assert (version, binned, count) == (6, 1, 7)
        lows, highs, values = header[4 : 4 + count], header[4 + count : 4 + 2 * count], header[4 + 2 * count :]
        assert all(lo <= v <= hi for lo, hi, v in zip(lows, highs, values, strict=True))
        assert size == 6 + 4 * count
    else:
        # version 4 is unbinned: InterOp bins a histogram with seven or fewer distinct scores itself, so a
        # realistic one uses many (the reference MiSeq run has 27)
        assert header == struct.pack("<BB", 4, 206)
        records = metrics.records(QUALITY, 1, STARTED)
        width = 6 + 4 * 50
        histograms = [struct.unpack_from("<50I", records, offset + 6) for offset in range(0, len(records), width)]
        scores = {q for histogram in histograms for q, n in enumerate(histogram, start=1) if n}
        assert len(scores) > 7


def _index_columns(text: str) -> tuple[list[str], list[str]]:
    if "[BCLConvert_Data]" in text:
        rows = list(csv.DictReader(io.StringIO(text.split("[BCLConvert_Data]\n", 1)[1])))
        lane1 = [r for r in rows if r["Lane"] == "1"]
        return [r["Index"] for r in lane1], [r.get("Index2", "") for r in lane1]
    data = text.split("[Data]", 1)[1].split("\r\n", 1)[1].replace("\r\n", "\n")
    rows = [r for r in csv.DictReader(io.StringIO(data)) if r["Sample_ID"]]
    return [r["index"] for r in rows], [r.get("index2", "") for r in rows]


@pytest.mark.parametrize("reads", ["51,6,51", "51,8,51", "151,8,8,151", "151,10,10,151"])
@pytest.mark.parametrize("instrument", list(PROFILES), ids=lambda i: i.value)
def test_indexes_are_at_least_three_apart(instrument: Instrument, reads: str) -> None:
    for seed in range(8):
        spec = new_run_spec(instrument, seed=seed, started_at=STARTED, reads=reads)
        index1, index2 = _index_columns(sample_sheet(spec).decode())
        assert len(index1) >= 4
        # THEN every pair of samples differs in at least three positions of each index read: with BCL Convert's
        # default one mismatch per index, no read could be assigned to two samples
        for a, b in itertools.combinations(range(len(index1)), 2):
            assert hamming(index1[a], index1[b]) >= MIN_INDEX_DISTANCE, (index1[a], index1[b])
            if index2[a]:
                assert hamming(index2[a], index2[b]) >= MIN_INDEX_DISTANCE, (index2[a], index2[b])


def _status_fields(path: Path) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.parse(path).getroot()}


@pytest.mark.parametrize("instrument", list(PROFILES), ids=lambda i: i.value)
@pytest.mark.parametrize("status", [CompletionStatus.USER_ENDED_EARLY, CompletionStatus.EXCEPTION_ENDED_EARLY])
def test_a_stopped_run_leaves_what_a_real_stopped_run_leaves(
    instrument: Instrument, status: CompletionStatus, tmp_path: Path
) -> None:
    # GIVEN a 26+8+8+26-cycle run stopped by the operator (or the instrument) after cycle 20
    spec = new_run_spec(
        instrument,
        seed=5,
        started_at=STARTED,
        reads="26,8,8,26",
        flowcell=SMALL[instrument],
        scale=1e-6,
        stop=RunStop(20, status),
    )
    folder = write(spec, tmp_path)
    present = [m for m in instrument.markers if (folder / m).exists()]
    # THEN RTA still finished (RTAComplete.txt) and the copy service still copied (CopyComplete.txt, where the
    # instrument writes it), but nothing says sequencing completed
    assert present == list(written_markers(spec))
    assert "RTAComplete.txt" in present
    assert "SequenceComplete.txt" not in present
    assert "SequencingComplete.txt" not in present
    assert present[-1] == instrument.completion_marker or instrument is Instrument.NOVASEQ6000
    # AND InterOp sees only the cycles that were sequenced
    metrics = interop.read(str(folder))
    assert metrics.q_metric_set().max_cycle() == 20
    # AND RunCompletionStatus.xml, where the instrument writes one, says how the run ended
    if "RunCompletionStatus.xml" in instrument.markers:
        fields = _status_fields(folder / "RunCompletionStatus.xml")
        assert fields["CompletionStatus"] == status.value
        assert fields["ErrorDescription"] not in ("", "None")
        if "CompletedRead1Cycles" in fields:
            assert (fields["PlannedRead1Cycles"], fields["CompletedRead1Cycles"]) == ("26", "20")
            assert fields["CompletedRead2Cycles"] == "0"
        else:
            assert (fields["NumCyclesPlanned"], fields["NumCyclesCompleted"]) == ("68", "20")


def test_completed_runs_say_so(tmp_path: Path) -> None:
    spec = new_run_spec(Instrument.NEXTSEQ500, seed=5, started_at=STARTED, reads="6,2,2,6", scale=1e-6)
    fields = _status_fields(write(spec, tmp_path) / "RunCompletionStatus.xml")
    assert fields["CompletionStatus"] == "CompletedAsPlanned"
    assert fields["CompletedRead1Cycles"] == fields["PlannedRead1Cycles"] == "6"
