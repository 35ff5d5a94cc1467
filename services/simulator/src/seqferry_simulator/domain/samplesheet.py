"""SampleSheet.csv: IEM v1 (MiSeq, iSeq, NextSeq 500, NovaSeq 6000) or BCL Convert v2 (NextSeq 2000, NovaSeq X)."""

from __future__ import annotations

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.runinfo import CRLF
from seqferry_simulator.domain.spec import RunSpec, seeded

_PLATFORM_V2 = {
    Instrument.NEXTSEQ2000: ("NextSeq1k2k", "NextSeq2000"),
    Instrument.NOVASEQX: ("NovaSeqXSeries", "NovaSeqXPlus"),
}
ADAPTER_R1 = "CTGTCTCTTATACACATCT"


# BCL Convert (and bcl2fastq) allow one mismatch per index by default, so any two samples' indexes must differ in
# at least three positions, or a read could match both and the sample sheet is rejected.
MIN_INDEX_DISTANCE = 3
_DRAWS_PER_SAMPLE = 200


def hamming(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def required_distance(length: int) -> int:
    """Index reads shorter than three cycles cannot be three apart; they must still all differ."""
    return min(MIN_INDEX_DISTANCE, length)


def _samples(spec: RunSpec) -> list[tuple[str, str, str]]:
    """(sample id, index, index2): reproducible, each index read at least ``MIN_INDEX_DISTANCE`` apart pairwise."""
    rng = seeded("samples", spec.seed)
    _, _, i1, i2 = spec.planned_cycles
    count = rng.randint(4, 24) if i1 else 1
    need1, need2 = required_distance(i1), required_distance(i2)
    samples: list[tuple[str, str, str]] = []
    for _ in range(count * _DRAWS_PER_SAMPLE):
        if len(samples) == count:
            break
        index = "".join(rng.choice("ACGT") for _ in range(i1))
        index2 = "".join(rng.choice("ACGT") for _ in range(i2))
        if any(hamming(index, s[1]) < need1 or hamming(index2, s[2]) < need2 for s in samples):
            continue  # too close to a sample already on the sheet
        samples.append((f"S{len(samples) + 1:03d}-{spec.identity.flowcell_id[-5:]}", index, index2))
    return samples


def _pad(rows: list[list[str]], width: int) -> list[str]:
    """IEM files pad every row to the data width with commas (they were saved from Excel)."""
    return [",".join(row + [""] * (width - len(row))) for row in rows]


def sample_sheet_v1(spec: RunSpec) -> bytes:
    r1, r2, _, i2 = spec.planned_cycles
    columns = ["Sample_ID", "Sample_Name", "Sample_Plate", "Sample_Well", "I7_Index_ID", "index"]
    if i2:
        columns += ["I5_Index_ID", "index2"]
    columns += ["Sample_Project", "Description"]
    data = []
    for number, (sample, index, index2) in enumerate(_samples(spec), start=1):
        row = [
            sample,
            sample,
            "",
            f"{'ABCDEFGH'[(number - 1) % 8]}{(number - 1) // 8 + 1:02d}",
            f"D7{number:02d}",
            index,
        ]
        if i2:
            row += [f"D5{number:02d}", index2]
        row += ["seqferry", "simulated"]
        data.append(row)
    rows: list[list[str]] = [
        ["[Header]"],
        ["IEMFileVersion", "4"],
        ["Investigator Name", "seqferry"],
        ["Experiment Name", spec.run_id],
        ["Date", f"{spec.started_at.month}/{spec.started_at.day}/{spec.started_at.year}"],
        ["Workflow", "GenerateFASTQ"],
        ["Application", "FASTQ Only"],
        ["Assay", "Nextera XT"],
        ["Description", "simulated run"],
        ["Chemistry", "Amplicon" if i2 else "Default"],
        [],
        ["[Reads]"],
        *([str(n)] for n in (r1, r2) if n),
        [],
        ["[Settings]"],
        ["Adapter", ADAPTER_R1],
        [],
        ["[Data]"],
        columns,
        *data,
    ]
    return (CRLF.join(_pad(rows, len(columns))) + CRLF).encode()


def sample_sheet_v2(spec: RunSpec) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    platform, kind = _PLATFORM_V2.get(spec.family, ("NovaSeqXSeries", "NovaSeqXPlus"))
    lines = [
        "[Header]",
        "FileFormatVersion,2",
        f"RunName,{spec.run_id}",
        f"InstrumentPlatform,{platform}",
        f"InstrumentType,{kind}",
        "IndexOrientation,Forward",
        "",
        "[Reads]",
        f"Read1Cycles,{r1}",
    ]
    lines += [f"Read2Cycles,{r2}"] if r2 else []
    lines += [f"Index1Cycles,{i1}"] if i1 else []
    lines += [f"Index2Cycles,{i2}"] if i2 else []
    lines += ["", "[BCLConvert_Settings]", "SoftwareVersion,4.2.7", "FastqCompressionFormat,gzip", ""]
    lines += ["[BCLConvert_Data]"]
    header = ["Lane", "Sample_ID"] + (["Index"] if i1 else []) + (["Index2"] if i2 else [])
    lines.append(",".join(header))
    for lane in range(1, spec.flowcell.lanes + 1):
        for sample, index, index2 in _samples(spec):
            lines.append(",".join([str(lane), sample] + ([index] if i1 else []) + ([index2] if i2 else [])))
    return ("\n".join(lines) + "\n").encode()


def sample_sheet(spec: RunSpec) -> bytes:
    return sample_sheet_v2(spec) if spec.profile.sample_sheet_version == 2 else sample_sheet_v1(spec)
