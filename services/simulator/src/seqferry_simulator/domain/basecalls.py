"""Base-call, filter and position files, and how each is written in portions over time.

A :class:`FileJob` knows its whole content but hands it out in ``portions`` consecutive pieces; the run writer
appends one portion per time slot, so files grow while the instrument "works" on them.
"""

from __future__ import annotations

import math
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

import numpy as np

from seqferry_simulator.domain.content import BCL_TABLE, FILTER_TABLE, ContentPool

STORED_BLOCK_MAX = 65535
BGZF_BLOCK_DATA = 65280  # what htslib puts in one BGZF block, keeping the block under 64 KiB
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
CBCL_BINS = ((0, 0), (1, 12), (2, 24), (3, 37))  # 2-bit quality code -> Q score (RTA3 binning)


def share(total: int, parts: int, index: int) -> range:
    """The ``index``-th of ``parts`` near-equal consecutive slices of ``range(total)``."""
    return range(total * index // parts, total * (index + 1) // parts)


class FileJob(ABC):
    """One file of the run folder, written in ``portions`` appends; the first portion replaces the file."""

    def __init__(self, relpath: str, portions: int, *, truncate: bool = True) -> None:
        self.relpath = relpath
        self.portions = max(1, portions)
        self.truncate = truncate

    @abstractmethod
    def portion(self, index: int) -> Iterator[bytes]: ...


class StaticJob(FileJob):
    def __init__(self, relpath: str, data: bytes, portions: int = 1, *, truncate: bool = True) -> None:
        super().__init__(relpath, portions, truncate=truncate)
        self.data = data

    def portion(self, index: int) -> Iterator[bytes]:
        part = share(len(self.data), self.portions, index)
        if part:
            yield self.data[part.start : part.stop]


class LazyJob(FileJob):
    """Content computed when the file is first written (InterOp records, files that depend on the clock)."""

    def __init__(self, relpath: str, produce: Callable[[], bytes], portions: int = 1, *, truncate: bool = True) -> None:
        super().__init__(relpath, portions, truncate=truncate)
        self._produce = produce
        self._data: bytes | None = None

    def portion(self, index: int) -> Iterator[bytes]:
        if self._data is None:
            self._data = self._produce()
        part = share(len(self._data), self.portions, index)
        if part:
            yield self._data[part.start : part.stop]
        if index == self.portions - 1:
            self._data = None


class PerClusterJob(FileJob):
    """A header followed by one byte per cluster (``.bcl`` and ``.filter``)."""

    def __init__(
        self, relpath: str, *, header: bytes, clusters: int, pool: ContentPool, table: bytes, portions: int
    ) -> None:
        super().__init__(relpath, portions)
        self.header, self.clusters, self.pool, self.table = header, clusters, pool, table
        self.key = pool.key(relpath)

    def portion(self, index: int) -> Iterator[bytes]:
        if index == 0:
            yield self.header
        part = share(self.clusters, self.portions, index)
        yield from self.pool.stream(self.key, part.start, len(part), self.table)


def bcl_job(relpath: str, clusters: int, pool: ContentPool, portions: int) -> FileJob:
    header = struct.pack("<I", clusters)
    return PerClusterJob(relpath, header=header, clusters=clusters, pool=pool, table=BCL_TABLE, portions=portions)


def filter_job(relpath: str, clusters: int, pool: ContentPool, portions: int) -> FileJob:
    # version 3 filter header: zero, version, cluster count
    header = struct.pack("<III", 0, 3, clusters)
    return PerClusterJob(relpath, header=header, clusters=clusters, pool=pool, table=FILTER_TABLE, portions=portions)


def stats_bytes(cycle: int, tile: int, clusters: int) -> bytes:
    """A 108-byte MiSeq ``.stats`` record: cycle, then intensity and per-base call statistics."""
    base = 300.0 + (tile % 97) - cycle * 0.8
    called = clusters / 4
    return struct.pack(
        "<I13d",
        cycle - 1,
        base,
        *(base * f for f in (1.0, 0.9, 1.1, 0.95)),
        *(base * f * 1.2 for f in (1.0, 0.9, 1.1, 0.95)),
        *(called for _ in range(4)),
    )


class LocsJob(FileJob):
    """Cluster positions: header (1, 1.0, count) then float32 x, y per cluster, on a regular grid."""

    COLUMNS = 2048

    def __init__(self, relpath: str, clusters: int, portions: int) -> None:
        super().__init__(relpath, portions)
        self.clusters = clusters

    def portion(self, index: int) -> Iterator[bytes]:
        if index == 0:
            yield struct.pack("<IfI", 1, 1.0, self.clusters)
        part = share(self.clusters, self.portions, index)
        step = 1 << 17
        for start in range(part.start, part.stop, step):
            ids = np.arange(start, min(start + step, part.stop), dtype=np.int64)
            xy = np.empty((len(ids), 2), dtype="<f4")
            xy[:, 0] = (ids % self.COLUMNS) * 1.25 + 10.0
            xy[:, 1] = (ids // self.COLUMNS) * 1.25 + 10.0
            yield xy.tobytes()


def gzip_stored(data: bytes) -> bytes:
    """A gzip member whose deflate stream is stored blocks: valid gzip, no compression cost, known size."""
    blocks = []
    count = max(1, math.ceil(len(data) / STORED_BLOCK_MAX))
    for number in range(count):
        chunk = data[number * STORED_BLOCK_MAX : (number + 1) * STORED_BLOCK_MAX]
        final = 1 if number == count - 1 else 0
        blocks.append(bytes([final]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + b"".join(blocks) + trailer


def gzip_stored_size(length: int) -> int:
    return 10 + length + 5 * max(1, math.ceil(length / STORED_BLOCK_MAX)) + 8


def bgzf_block(data: bytes) -> bytes:
    """One BGZF block (gzip member with the 'BC' extra field giving the block size) of stored data."""
    if len(data) > BGZF_BLOCK_DATA:
        raise ValueError("a BGZF block holds at most 65280 bytes here")
    deflate = b"\x01" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data
    total = 18 + len(deflate) + 8
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", total - 1)
    return header + deflate + struct.pack("<II", zlib.crc32(data), len(data))


class BgzfBclJob(FileJob):
    """``{cycle:04d}.bcl.bgzf``: a BCL of every cluster in the lane (count, then one byte each), BGZF-compressed."""

    def __init__(self, relpath: str, clusters: int, pool: ContentPool, portions: int) -> None:
        super().__init__(relpath, portions)
        self.clusters, self.pool = clusters, pool
        self.key = pool.key(relpath)
        self.length = 4 + clusters
        # small files still get one block per portion, so they grow over the cycle like large ones
        self.block_data = min(BGZF_BLOCK_DATA, max(1, math.ceil(self.length / self.portions)))
        self.blocks = math.ceil(self.length / self.block_data)

    def _raw(self, start: int, stop: int) -> bytes:
        head = struct.pack("<I", self.clusters)[start:stop] if start < 4 else b""
        first = max(start, 4) - 4
        body = self.pool.take(self.key, first, max(0, stop - 4 - first), BCL_TABLE)
        return head + body

    def portion(self, index: int) -> Iterator[bytes]:
        for block in share(self.blocks, self.portions, index):
            start = block * self.block_data
            yield bgzf_block(self._raw(start, min(self.length, start + self.block_data)))
        if index == self.portions - 1:
            yield BGZF_EOF


def bci_bytes(tiles: list[int], clusters: int) -> bytes:
    """``s_{lane}.bci``: (tile number, cluster count) for each tile of the lane, in BCL order."""
    return b"".join(struct.pack("<II", tile, clusters) for tile in tiles)


class CbclJob(FileJob):
    """``L00n_{surface}.cbcl``: header with one record per tile, then one gzip block per tile.

    Clusters are packed two per byte (2-bit base, 2-bit binned quality); non-PF clusters are excluded, as
    NovaSeq-class instruments write them.
    """

    def __init__(self, relpath: str, tiles: list[tuple[int, int]], pool: ContentPool, portions: int) -> None:
        super().__init__(relpath, portions)
        self.tiles = tiles  # (tile number, PF clusters)
        self.pool = pool
        self.key = pool.key(relpath)

    def header(self) -> bytes:
        records = b"".join(
            struct.pack("<IIII", tile, pf, (pf + 1) // 2, gzip_stored_size((pf + 1) // 2)) for tile, pf in self.tiles
        )
        bins = b"".join(struct.pack("<II", a, b) for a, b in CBCL_BINS)
        size = 2 + 4 + 1 + 1 + 4 + len(bins) + 4 + len(records) + 1
        return (
            struct.pack("<HIBBI", 1, size, 2, 2, len(CBCL_BINS))
            + bins
            + struct.pack("<I", len(self.tiles))
            + records
            + b"\x01"
        )

    def portion(self, index: int) -> Iterator[bytes]:
        if index == 0:
            yield self.header()
        offset = 0
        positions = []
        for _, pf in self.tiles:
            positions.append(offset)
            offset += (pf + 1) // 2
        for number in share(len(self.tiles), self.portions, index):
            size = (self.tiles[number][1] + 1) // 2
            yield gzip_stored(self.pool.take(self.key, positions[number], size))
