"""InterOp binary metrics in the formats Illumina's InterOp library reads.

Versions follow the reference folders: RTA 1 (MiSeq) writes Tile v2, Extraction v2, CorrectedInt v2, Q v4 and
Error v3; RTA 2 (NextSeq 500/550, iSeq 100) the same with binned Q v6; RTA 3 (NovaSeq, NextSeq 1000/2000)
Tile v3, Extraction v3, binned Q v7, Error v4 and Image v3, one file per cycle under ``InterOp/C{n}.1/``.
Values are plausible and reproducible (derived from the run's seed), not measurements.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import numpy as np

from seqferry_simulator.domain.profiles import Rta
from seqferry_simulator.domain.spec import RunSpec, seeded

_DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_DOTNET_UTC_KIND = 1 << 62

# (lower, upper, value) of each quality bin. RTA 3's three bins are those of the reference NovaSeq 6000
# QMetricsOut.bin (240802_A01934_0156_AHJF77DRX5, header 07 14 01 03 | 02 11 0b | 12 1d 19 | 1e 28 25).
Q_BINS_RTA2 = ((2, 9, 6), (10, 19, 15), (20, 24, 22), (25, 29, 27), (30, 34, 33), (35, 39, 37), (40, 41, 40))
Q_BINS_RTA3 = ((2, 17, 11), (18, 29, 25), (30, 40, 37))
# RTA 1 writes an unbinned histogram of Q1..Q50. Relative weights of the scores below and at/above Q30, taken from
# the reference MiSeq run (140211_M00612_0148_000000000-A7M8N, all cycles): InterOp treats a histogram with more
# than seven distinct scores as unbinned (logic/metric/q_metric.h, count_legacy_q_score_bins), so it needs many.
Q_LOW_RTA1 = {12: 1, 13: 1, 14: 18, 15: 61, 16: 369, 17: 46, 18: 90, 19: 30, 20: 36, 21: 3, 26: 1, 27: 1, 29: 120}
Q_HIGH_RTA1 = {30: 39, 31: 23, 32: 568, 33: 776, 34: 875, 35: 306, 36: 289, 37: 1768, 38: 2769, 39: 3239}

EXTRACTION = "ExtractionMetricsOut.bin"
CORRECTED = "CorrectedIntMetricsOut.bin"
QUALITY = "QMetricsOut.bin"
ERROR = "ErrorMetricsOut.bin"
IMAGE = "ImageMetricsOut.bin"
TILE = "TileMetricsOut.bin"


def dotnet_ticks(moment: datetime) -> int:
    """A .NET ``DateTime.ToBinary()`` value (100 ns ticks since year 1, UTC kind), as RTA stamps extraction."""
    delta = moment.astimezone(UTC) - _DOTNET_EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return ticks | _DOTNET_UTC_KIND


class InteropMetrics:
    """Headers and per-cycle records of every metric file of one run."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.rta = spec.profile.rta
        fc = spec.flowcell
        pairs = [(lane, tile) for lane in range(1, fc.lanes + 1) for tile in sorted(fc.tiles(lane))]
        self.lanes = np.array([p[0] for p in pairs], dtype=np.int64)
        self.tiles = np.array([p[1] for p in pairs], dtype=np.int64)
        rng = seeded("interop", spec.seed)
        count = len(pairs)
        self.clusters = spec.clusters_per_tile
        self.pf_fraction = np.array([rng.uniform(0.72, 0.93) for _ in range(count)])
        self.pf = np.maximum(1, np.rint(self.clusters * self.pf_fraction)).astype(np.int64)
        self.intensity0 = np.array([rng.uniform(250, 650) for _ in range(count)])
        self.fwhm0 = np.array([rng.uniform(2.4, 3.1) for _ in range(count)])
        self.error0 = np.array([rng.uniform(0.15, 0.45) for _ in range(count)])
        self.phasing = [rng.uniform(0.0008, 0.003) for _ in spec.reads.reads]
        self.channels = max(1, len(spec.profile.channels)) if self.rta is Rta.RTA3 else 4
        self.used_channels = len(spec.profile.channels) or 4

    # ----- which files, in which versions

    @property
    def cycle_files(self) -> tuple[str, ...]:
        if self.rta is Rta.RTA3:
            return (EXTRACTION, QUALITY, ERROR, IMAGE)
        return (EXTRACTION, CORRECTED, QUALITY, ERROR)

    def has_records(self, name: str, cycle: int) -> bool:
        """Error metrics exist only for sequencing cycles (RTA aligns PhiX in non-index reads)."""
        return name != ERROR or not self.spec.reads.read_of_cycle(cycle).is_index

    def header(self, name: str) -> bytes:
        rta3 = self.rta is Rta.RTA3
        if name == EXTRACTION:
            return struct.pack("<BBB", 3, 8 + 6 * self.channels, self.channels) if rta3 else struct.pack("<BB", 2, 38)
        if name == CORRECTED:
            return struct.pack("<BB", 2, 48)
        if name == ERROR:
            return struct.pack("<BB", 4, 12) if rta3 else struct.pack("<BB", 3, 30)
        if name == IMAGE:
            return struct.pack("<BBB", 3, 8 + 4 * self.channels, self.channels)
        if name == QUALITY:
            if self.rta is Rta.RTA1:
                return struct.pack("<BB", 4, 206)
            bins = Q_BINS_RTA3 if rta3 else Q_BINS_RTA2
            size = (8 if rta3 else 6) + 4 * len(bins)
            head = struct.pack("<BBBB", 7 if rta3 else 6, size, 1, len(bins))
            if rta3:
                # Version 7: (low, high, value) per bin (InterOp model/metrics/q_metric.cpp, q_score_bin_layout).
                return head + bytes(b for low_high_value in bins for b in low_high_value)
            # Version 6: all lows, then all highs, then all values.
            return head + bytes([b[0] for b in bins] + [b[1] for b in bins] + [b[2] for b in bins])
        raise ValueError(f"no per-cycle InterOp file {name}")

    # ----- per-cycle records

    def _ids(self, dtype: np.dtype[np.void], cycle: int) -> np.ndarray:
        records = np.zeros(len(self.tiles), dtype=dtype)
        records["lane"] = self.lanes
        records["tile"] = self.tiles
        records["cycle"] = cycle
        return records

    def _tile_type(self) -> str:
        return "<u4" if self.rta is Rta.RTA3 else "<u2"

    def _jitter(self, cycle: int, salt: int) -> np.ndarray:
        return ((self.tiles * 2654435761 + cycle * 40503 + salt * 97) % 1000) / 1000.0

    def records(self, name: str, cycle: int, at: datetime) -> bytes:
        if not self.has_records(name, cycle):
            return b""
        total = self.spec.total_cycles
        decay = 0.997**cycle
        tile_t = self._tile_type()
        if name == EXTRACTION:
            n = self.channels
            dtype = np.dtype(
                [("lane", "<u2"), ("tile", tile_t), ("cycle", "<u2"), ("fwhm", "<f4", (n,)), ("intensity", "<u2", (n,))]
                + ([] if self.rta is Rta.RTA3 else [("time", "<u8")])
            )
            rec = self._ids(dtype, cycle)
            for ch in range(min(n, self.used_channels)):
                rec["fwhm"][:, ch] = self.fwhm0 + 0.002 * cycle + 0.05 * ch
                rec["intensity"][:, ch] = np.rint(
                    self.intensity0 * decay * (1 + 0.1 * ch) * (0.9 + 0.2 * self._jitter(cycle, ch))
                )
            if self.rta is not Rta.RTA3:
                rec["time"] = dotnet_ticks(at)
            return rec.tobytes()
        if name == CORRECTED:
            dtype = np.dtype(
                [
                    ("lane", "<u2"),
                    ("tile", "<u2"),
                    ("cycle", "<u2"),
                    ("average", "<u2"),
                    ("corrected", "<u2", (4,)),
                    ("called", "<u2", (4,)),
                    ("counts", "<u4", (5,)),
                    ("snr", "<f4"),
                ]
            )
            rec = self._ids(dtype, cycle)
            level = np.rint(self.intensity0 * decay)
            rec["average"] = level
            for base in range(4):
                rec["corrected"][:, base] = np.rint(level * (0.8 + 0.1 * base))
                rec["called"][:, base] = np.rint(level * (0.9 + 0.1 * base))
                rec["counts"][:, base + 1] = self.pf // 4
            rec["counts"][:, 0] = self.pf - 4 * (self.pf // 4)
            rec["snr"] = 8.0 * decay
            return rec.tobytes()
        if name == ERROR:
            rate = self.error0 * (1 + 1.5 * cycle / total) + 0.05 * self._jitter(cycle, 7)
            if self.rta is Rta.RTA3:
                dtype = np.dtype([("lane", "<u2"), ("tile", "<u4"), ("cycle", "<u2"), ("error", "<f4")])
                rec = self._ids(dtype, cycle)
            else:
                dtype = np.dtype(
                    [("lane", "<u2"), ("tile", "<u2"), ("cycle", "<u2"), ("error", "<f4"), ("reads", "<u4", (5,))]
                )
                rec = self._ids(dtype, cycle)
                rec["reads"][:, 0] = np.rint(self.pf * 0.01 * (1 - rate / 100))
            rec["error"] = rate
            return rec.tobytes()
        if name == IMAGE:
            n = self.channels
            dtype = np.dtype(
                [("lane", "<u2"), ("tile", "<u4"), ("cycle", "<u2"), ("min", "<u2", (n,)), ("max", "<u2", (n,))]
            )
            rec = self._ids(dtype, cycle)
            rec["min"] = np.rint(self.intensity0 * 0.3)[:, None]
            rec["max"] = np.rint(self.intensity0 * 2.0 * decay)[:, None]
            return rec.tobytes()
        if name == QUALITY:
            return self._quality(cycle)
        raise ValueError(f"no per-cycle InterOp file {name}")

    def _quality(self, cycle: int) -> bytes:
        total = self.spec.total_cycles
        # Quality falls over the run; the mean over all cycles is about the instrument's q30_share.
        target = self.spec.profile.q30_share
        q30 = np.clip(target + 0.075 - 0.12 * cycle / total - 0.03 * self._jitter(cycle, 3), 0.5, 0.99)
        weights: dict[int, float]
        if self.rta is Rta.RTA1:
            scores: tuple[int, ...] = (*Q_LOW_RTA1, *Q_HIGH_RTA1)
            weights = {**Q_LOW_RTA1, **Q_HIGH_RTA1}
            width = 50
        else:
            bins = Q_BINS_RTA3 if self.rta is Rta.RTA3 else Q_BINS_RTA2
            scores = tuple(b[2] for b in bins)
            weights = dict.fromkeys(scores, 1.0)
            width = len(bins)
        low_total = sum(w for q, w in weights.items() if q < 30)
        high_total = sum(w for q, w in weights.items() if q >= 30)
        fractions = np.stack(
            [q30 * weights[q] / high_total if q >= 30 else (1 - q30) * weights[q] / low_total for q in scores], axis=1
        )
        # cumulative rounding keeps every tile's histogram summing to its PF clusters, even for tiny runs
        bounds = np.rint(self.pf[:, None] * np.cumsum(fractions, axis=1)).astype(np.int64)
        counts = np.diff(bounds, axis=1, prepend=0)
        hist = np.zeros((len(self.tiles), width), dtype=np.int64)
        for column, q in enumerate(scores):
            hist[:, q - 1 if self.rta is Rta.RTA1 else column] = counts[:, column]
        dtype = np.dtype([("lane", "<u2"), ("tile", self._tile_type()), ("cycle", "<u2"), ("hist", "<u4", (width,))])
        rec = self._ids(dtype, cycle)
        rec["hist"] = hist
        return rec.tobytes()

    # ----- tile metrics

    def tile_metrics(self, *, complete: bool) -> bytes:
        """TileMetricsOut: density only right after template generation (v2), everything once PF is known."""
        area = self.spec.profile.tile_area_mm2
        density = self.clusters / area
        if self.rta is Rta.RTA3:
            out = [struct.pack("<BBf", 3, 15, area)]
            for lane, tile, pf in zip(self.lanes.tolist(), self.tiles.tolist(), self.pf.tolist(), strict=True):
                out.append(struct.pack("<HIBff", lane, tile, ord("t"), float(self.clusters), float(pf)))
                for read in self.spec.reads.sequencing_reads:
                    out.append(struct.pack("<HIBIf", lane, tile, ord("r"), read.number, 0.5 + 0.1 * read.number))
            return b"".join(out)
        out = [struct.pack("<BB", 2, 10)]
        for lane, tile, pf in zip(self.lanes.tolist(), self.tiles.tolist(), self.pf.tolist(), strict=True):
            out.append(struct.pack("<HHHf", lane, tile, 100, density))
            if not complete:
                continue
            out.append(struct.pack("<HHHf", lane, tile, 101, pf / area))
            out.append(struct.pack("<HHHf", lane, tile, 102, float(self.clusters)))
            out.append(struct.pack("<HHHf", lane, tile, 103, float(pf)))
            for offset, read in enumerate(self.spec.reads.reads):
                out.append(struct.pack("<HHHf", lane, tile, 200 + 2 * offset, self.phasing[offset]))
                out.append(struct.pack("<HHHf", lane, tile, 201 + 2 * offset, self.phasing[offset] * 0.6))
                if not read.is_index:
                    out.append(struct.pack("<HHHf", lane, tile, 300 + offset, 0.9))
        return b"".join(out)
