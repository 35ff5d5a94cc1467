"""Reproducible file contents without generating gigabytes of randomness.

A run's bytes come from a 1 MiB pool drawn from its seed; each file reads the pool from its own offset
(a CRC of its path) and maps the bytes onto values its format allows. Producing a file costs a copy, not a
random-number generator, and the same seed yields byte-identical files.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from seqferry_simulator.domain.spec import seeded

POOL_BYTES = 1 << 20
PIECE_BYTES = 1 << 20


def _table(func: object) -> bytes:
    assert callable(func)
    return bytes(func(b) for b in range(256))


# BCL byte: two low bits are the base, six high bits the quality; 0 would be a no-call, so qualities start at 2.
BCL_TABLE = _table(lambda b: ((2 + ((b >> 2) % 39)) << 2) | (b & 3))
# Filter byte: bit 0 set when the cluster passes filter (about 90 % do).
FILTER_TABLE = _table(lambda b: 1 if b >= 26 else 0)


class ContentPool:
    def __init__(self, seed: int) -> None:
        pool = seeded("pool", seed).randbytes(POOL_BYTES)
        self._doubled = pool + pool  # any window of up to POOL_BYTES needs no wrap-around

    @staticmethod
    def key(name: str) -> int:
        return zlib.crc32(name.encode())

    def stream(self, key: int, start: int, count: int, table: bytes | None = None) -> Iterator[bytes]:
        """``count`` bytes of file ``key`` from position ``start``, in pieces of at most 1 MiB."""
        position = start
        end = start + count
        while position < end:
            size = min(PIECE_BYTES, end - position)
            offset = (key + position) % POOL_BYTES
            piece = self._doubled[offset : offset + size]
            yield piece.translate(table) if table is not None else piece
            position += size

    def take(self, key: int, start: int, count: int, table: bytes | None = None) -> bytes:
        return b"".join(self.stream(key, start, count, table))
