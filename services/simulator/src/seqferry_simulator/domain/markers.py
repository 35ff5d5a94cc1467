"""Completion markers: what each instrument writes when RTA, sequencing and copying finish.

A stopped run (an operator's stop, or an instrument error) still ends with RTA finishing the cycles it has
(``RTAComplete.txt``), ``RunCompletionStatus.xml`` saying how it ended and how many cycles were sequenced, and
the copy service's ``CopyComplete.txt`` where the instrument writes it; only the flags that mean "sequencing
completed" (``SequenceComplete.txt``, ``SequencingComplete.txt``) are missing.
"""

from __future__ import annotations

from datetime import datetime

from seqferry_shared.sequencers import SEQUENCE_COMPLETE, SEQUENCING_COMPLETE
from seqferry_simulator.domain.profiles import Rta
from seqferry_simulator.domain.runinfo import CRLF, iso_utc, us_datetime
from seqferry_simulator.domain.spec import RunSpec
from seqferry_simulator.domain.xmlfmt import XSI_FIRST, XmlStyle, el, el_attrs, render

NEXTSEQ_STYLE = XmlStyle(indent="    ", newline=CRLF, empty="/>")
LINUX_STYLE = XmlStyle(indent="  ", empty=" />")


def rta_complete(spec: RunSpec, at: datetime) -> bytes:
    version = spec.profile.rta_version.lstrip("v")
    if spec.profile.rta is Rta.RTA1:
        # 2/11/2014,17:25:13.217,Illumina RTA 1.18.42 (the reference MiSeq file)
        stamp = f"{at.month}/{at.day}/{at.year},{at:%H:%M:%S}.{at.microsecond // 1000:03d}"
        return f"{stamp},Illumina RTA {version}{CRLF}".encode()
    newline = CRLF if spec.profile.rta is Rta.RTA2 else "\n"
    return f"RTA {version} completed on {us_datetime(at)}{newline}".encode()


def written_markers(spec: RunSpec) -> tuple[str, ...]:
    """The markers this run leaves, in order (a stopped run has no 'sequencing complete' flag)."""
    if spec.stop is None:
        return spec.profile.markers
    return tuple(m for m in spec.profile.markers if m not in (SEQUENCE_COMPLETE, SEQUENCING_COMPLETE))


def run_completion_status(spec: RunSpec, at: datetime) -> bytes:
    r1, r2, i1, i2 = spec.planned_cycles
    c1, c2, ci1, ci2 = spec.completed_cycles
    status = spec.completion_status.value
    error = spec.stop.error_description if spec.stop is not None else "None"
    if spec.profile.rta is Rta.RTA2:
        pf = 0.85
        density = spec.clusters_per_tile / spec.profile.tile_area_mm2 / 1000
        yield_gb = spec.clusters_per_tile * spec.flowcell.tile_count * pf * spec.cycles_written / 1e9
        root = el(
            "RunCompletionStatus",
            None,
            el("Version", 1),
            el("CompletionStatus", status),
            el("RunId", spec.run_id),
            el("PlannedRead1Cycles", r1),
            el("PlannedRead2Cycles", r2),
            el("PlannedIndex1ReadCycles", i1),
            el("PlannedIndex2ReadCycles", i2),
            el("CompletedRead1Cycles", c1),
            el("CompletedRead2Cycles", c2),
            el("CompletedIndex1ReadCycles", ci1),
            el("CompletedIndex2ReadCycles", ci2),
            el("ClusterDensity", f"{density:.6f}"),
            el("ClustersPassingFilter", f"{pf * 100:.5f}"),
            el("EstimatedYield", f"{yield_gb:.5f}"),
            el("ErrorDescription", error),
        )
        return render(root, NEXTSEQ_STYLE)
    root = el_attrs(
        "RunCompletionStatus",
        list(XSI_FIRST),
        el("RunStatus", "RunCompleted" if spec.stop is None else "RunStopped"),
        el("CompletionStatus", status),
        el("RunId", spec.run_id),
        el("CompletionTime", iso_utc(at)),
        el("NumCyclesPlanned", spec.total_cycles),
        el("NumCyclesCompleted", spec.cycles_written),
        el("ErrorDescription", None if spec.stop is None else error),
    )
    return render(root, LINUX_STYLE)


def marker_content(spec: RunSpec, name: str, at: datetime) -> bytes:
    if name == "RTAComplete.txt":
        return rta_complete(spec, at)
    if name == "RunCompletionStatus.xml":
        return run_completion_status(spec, at)
    # SequenceComplete.txt and CopyComplete.txt are empty flag files.
    return b""
