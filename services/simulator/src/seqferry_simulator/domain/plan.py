"""The timeline of one run: which file portions are written when, in the order the instrument writes them.

Metadata first; clustering; then every cycle's base calls in portions across the second half of the cycle
(files grow while the cycle is processed), InterOp records when the cycle completes, positions after cycle 1,
filters and tile metrics at cycle 26; after the last cycle the completion markers, the final one last.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.basecalls import (
    BgzfBclJob,
    CbclJob,
    FileJob,
    LazyJob,
    LocsJob,
    StaticJob,
    bci_bytes,
    bcl_job,
    filter_job,
    stats_bytes,
)
from seqferry_simulator.domain.content import ContentPool
from seqferry_simulator.domain.interop_files import TILE, InteropMetrics
from seqferry_simulator.domain.markers import marker_content, written_markers
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.profiles import BasecallFormat, Rta
from seqferry_simulator.domain.runinfo import run_info_xml
from seqferry_simulator.domain.runparams import run_parameters_xml
from seqferry_simulator.domain.samplesheet import sample_sheet
from seqferry_simulator.domain.spec import RunSpec

BASECALLS = "Data/Intensities/BaseCalls"
INTENSITIES = "Data/Intensities"


class Phase(StrEnum):
    PENDING = "pending"
    CLUSTERING = "clustering"
    SEQUENCING = "sequencing"
    FINISHING = "finishing"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class Action:
    job: FileJob
    portion: int


@dataclass(frozen=True, slots=True)
class Slot:
    at: float  # seconds after the run started
    actions: tuple[Action, ...]
    phase: Phase
    cycles_done: int
    marker: str | None = None


def _all(job: FileJob) -> list[Action]:
    return [Action(job, k) for k in range(job.portions)]


class RunPlan:
    def __init__(self, spec: RunSpec, pace: Pace) -> None:
        self.spec = spec
        self.pace = pace
        self.pool = ContentPool(spec.seed)
        self.metrics = InteropMetrics(spec)
        self.chunks = spec.chunks
        self.pf_by_tile: dict[int, dict[int, int]] = {}
        for lane, tile, pf in zip(
            self.metrics.lanes.tolist(), self.metrics.tiles.tolist(), self.metrics.pf.tolist(), strict=True
        ):
            self.pf_by_tile.setdefault(lane, {})[tile] = pf

    def moment(self, at: float) -> datetime:
        return self.spec.started_at + timedelta(seconds=at)

    def cycle_end(self, cycle: int) -> float:
        return self.pace.clustering_s + cycle * self.pace.seconds_per_cycle

    # ----- files per cycle

    def _lane_dir(self, lane: int) -> str:
        return f"{BASECALLS}/L{lane:03d}"

    def basecall_jobs(self, cycle: int) -> list[FileJob]:
        spec, fc, k = self.spec, self.spec.flowcell, self.chunks
        clusters = spec.clusters_per_tile
        jobs: list[FileJob] = []
        for lane in range(1, fc.lanes + 1):
            lane_dir = self._lane_dir(lane)
            tiles = fc.tiles(lane)
            if spec.profile.basecalls is BasecallFormat.BCL:
                for tile in sorted(tiles):
                    stem = f"{lane_dir}/C{cycle}.1/s_{lane}_{tile}"
                    jobs.append(bcl_job(f"{stem}.bcl", clusters, self.pool, k))
                    jobs.append(StaticJob(f"{stem}.stats", stats_bytes(cycle, tile, clusters)))
            elif spec.profile.basecalls is BasecallFormat.BGZF:
                jobs.append(BgzfBclJob(f"{lane_dir}/{cycle:04d}.bcl.bgzf", clusters * len(tiles), self.pool, k))
            else:
                pf = self.pf_by_tile[lane]
                for surface in range(1, fc.surfaces + 1):
                    on_surface = [(t, pf[t]) for t in sorted(tiles) if fc.surface_of(t) == surface]
                    relpath = f"{lane_dir}/C{cycle}.1/L{lane:03d}_{surface}.cbcl"
                    jobs.append(CbclJob(relpath, on_surface, self.pool, k))
        return jobs

    def position_jobs(self) -> list[FileJob]:
        """Cluster positions, known once template generation is done (after the first cycle)."""
        spec, fc, k = self.spec, self.spec.flowcell, self.chunks
        clusters = spec.clusters_per_tile
        if spec.profile.basecalls is BasecallFormat.BCL:
            return [
                LocsJob(f"{INTENSITIES}/L{lane:03d}/s_{lane}_{tile}.locs", clusters, k)
                for lane in range(1, fc.lanes + 1)
                for tile in sorted(fc.tiles(lane))
            ]
        if spec.profile.basecalls is BasecallFormat.BGZF:
            jobs: list[FileJob] = []
            if spec.family is Instrument.ISEQ100:
                # patterned flow cell: one s.locs for the whole flow cell
                jobs.append(LocsJob(f"{INTENSITIES}/s.locs", clusters, k))
            for lane in range(1, fc.lanes + 1):
                tiles = fc.tiles(lane)
                if spec.family is not Instrument.ISEQ100:
                    jobs.append(LocsJob(f"{INTENSITIES}/L{lane:03d}/s_{lane}.locs", clusters * len(tiles), k))
                # the base-call index is written with the lane's first base-call file
                jobs.append(StaticJob(f"{self._lane_dir(lane)}/s_{lane}.bci", bci_bytes(tiles, clusters)))
            return jobs
        # patterned flow cells: the same nanowell grid for every tile, one file per lane
        return [LocsJob(f"{INTENSITIES}/s_{lane}.locs", clusters, k) for lane in range(1, fc.lanes + 1)]

    def filter_jobs(self) -> list[FileJob]:
        spec, fc, k = self.spec, self.spec.flowcell, self.chunks
        clusters = spec.clusters_per_tile
        if spec.profile.basecalls is BasecallFormat.BGZF:
            return [
                filter_job(f"{self._lane_dir(lane)}/s_{lane}.filter", clusters * len(fc.tiles(lane)), self.pool, k)
                for lane in range(1, fc.lanes + 1)
            ]
        return [
            filter_job(f"{self._lane_dir(lane)}/s_{lane}_{tile}.filter", clusters, self.pool, k)
            for lane in range(1, fc.lanes + 1)
            for tile in sorted(fc.tiles(lane))
        ]

    def _cycle_records(self, name: str, cycle: int, header: bool) -> bytes:
        at = self.moment(self.cycle_end(cycle))
        head = self.metrics.header(name) if header else b""
        return head + self.metrics.records(name, cycle, at)

    def interop_jobs(self, cycle: int) -> list[FileJob]:
        """RTA 1/2 append each cycle's records to InterOp/*.bin; RTA 3 writes a file per cycle."""
        jobs: list[FileJob] = []
        for name in self.metrics.cycle_files:
            if not self.metrics.has_records(name, cycle):
                continue
            if self.spec.profile.rta is Rta.RTA3:
                produce = partial(self._cycle_records, name, cycle, True)
                jobs.append(LazyJob(f"InterOp/C{cycle}.1/{name}", produce))
            else:
                # read 1 is never an index read, so every appended file starts at cycle 1
                produce = partial(self._cycle_records, name, cycle, cycle == 1)
                jobs.append(LazyJob(f"InterOp/{name}", produce, truncate=cycle == 1))
        return jobs

    def tile_metrics_job(self, relpath: str, *, complete: bool) -> FileJob:
        return LazyJob(relpath, partial(self.metrics.tile_metrics, complete=complete))

    def _merged(self, name: str) -> bytes:
        records = (self._cycle_records(name, c, False) for c in range(1, self.spec.cycles_written + 1))
        return self.metrics.header(name) + b"".join(records)

    def consolidated_interop_jobs(self) -> list[FileJob]:
        """RTA 3 merges the per-cycle InterOp files into InterOp/*.bin once the run is done."""
        jobs: list[FileJob] = [
            LazyJob(f"InterOp/{name}", partial(self._merged, name), self.chunks) for name in self.metrics.cycle_files
        ]
        jobs.append(self.tile_metrics_job(f"InterOp/{TILE}", complete=True))
        return jobs

    # ----- the timeline

    def slots(self) -> Iterator[Slot]:
        spec, pace, k = self.spec, self.pace, self.chunks
        metadata = [
            StaticJob("RunInfo.xml", run_info_xml(spec)),
            StaticJob(spec.profile.run_parameters_file, run_parameters_xml(spec)),
            StaticJob("SampleSheet.csv", sample_sheet(spec)),
        ]
        yield Slot(0.0, tuple(a for job in metadata for a in _all(job)), Phase.CLUSTERING, 0)
        rta3 = spec.profile.rta is Rta.RTA3
        if not rta3:
            # template generation reports cluster density before the first cycle completes (MiSeq time series)
            early = self.tile_metrics_job(f"InterOp/{TILE}", complete=False)
            yield Slot(pace.clustering_s, tuple(_all(early)), Phase.SEQUENCING, 0)

        total = spec.cycles_written  # all planned cycles, or those before the run was stopped
        for cycle in range(1, total + 1):
            start = self.cycle_end(cycle - 1)
            jobs = self.basecall_jobs(cycle)
            if cycle == 1:
                jobs += self.position_jobs()
            if cycle == spec.filter_cycle:
                jobs += self.filter_jobs()
            for index in range(k):
                at = start + pace.seconds_per_cycle * (0.5 + 0.5 * (index + 1) / k)
                actions = [Action(job, index) for job in jobs if index < job.portions]
                done = cycle - 1
                if index == k - 1:
                    done = cycle
                    extra = self.interop_jobs(cycle)
                    if cycle == spec.filter_cycle:
                        folder = f"InterOp/C{cycle}.1" if rta3 else "InterOp"
                        extra.append(self.tile_metrics_job(f"{folder}/{TILE}", complete=True))
                    actions += [a for job in extra for a in _all(job)]
                yield Slot(at, tuple(actions), Phase.SEQUENCING, done)

        end = self.cycle_end(total)
        finish = pace.finish_s
        if rta3:
            merged = self.consolidated_interop_jobs()
            for index in range(k):
                at = end + finish * 0.2 * (index + 1) / k
                yield Slot(at, tuple(Action(j, index) for j in merged if index < j.portions), Phase.FINISHING, total)
        if spec.family is Instrument.NEXTSEQ2000:
            at = end + finish * 0.25
            rewritten = StaticJob(spec.profile.run_parameters_file, run_parameters_xml(spec, ended_at=self.moment(at)))
            yield Slot(at, tuple(_all(rewritten)), Phase.FINISHING, total)
        markers = written_markers(spec)
        for number, name in enumerate(markers, start=1):
            at = end + finish * (0.3 + 0.7 * number / len(markers))
            job = StaticJob(name, marker_content(spec, name, self.moment(at)))
            phase = Phase.COMPLETE if number == len(markers) else Phase.FINISHING
            yield Slot(at, tuple(_all(job)), phase, total, marker=name)
