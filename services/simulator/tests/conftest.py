"""Helpers shared by the simulator's tests: an independent RunInfo.xml reader and run-folder snapshots."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# Real instrument files (see SOURCES.md there); override the location with SEQFERRY_ILLUMINA_REFERENCE.
REFERENCE = Path(
    os.environ.get("SEQFERRY_ILLUMINA_REFERENCE", Path(__file__).resolve().parents[3] / "tests/reference/illumina")
)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    number: int
    flowcell: str
    instrument: str
    reads: list[tuple[int, int, bool]]  # number, cycles, is index
    lanes: int
    surfaces: int
    swaths: int
    tile_count: int
    tiles: list[tuple[int, int]]  # lane, tile number

    @property
    def total_cycles(self) -> int:
        return sum(c for _, c, _ in self.reads)


def parse_run_info(path: Path) -> RunInfo:
    root = ET.parse(path).getroot()
    run = root.find("Run")
    assert run is not None
    layout = run.find("FlowcellLayout")
    assert layout is not None
    lanes, surfaces = int(layout.get("LaneCount", 0)), int(layout.get("SurfaceCount", 0))
    swaths, tile_count = int(layout.get("SwathCount", 0)), int(layout.get("TileCount", 0))
    names = [t.text or "" for t in layout.iter("Tile")]
    if names:
        tiles = [(int(n.split("_")[0]), int(n.split("_")[1])) for n in names]
    else:  # RunInfo v2 lists no tiles: surface, swath, two-digit tile
        tiles = [
            (lane, s * 1000 + w * 100 + t)
            for lane in range(1, lanes + 1)
            for s in range(1, surfaces + 1)
            for w in range(1, swaths + 1)
            for t in range(1, tile_count + 1)
        ]
    return RunInfo(
        run_id=run.get("Id", ""),
        number=int(run.get("Number", 0)),
        flowcell=run.findtext("Flowcell", ""),
        instrument=run.findtext("Instrument", ""),
        reads=[
            (int(r.get("Number", 0)), int(r.get("NumCycles", 0)), r.get("IsIndexedRead") == "Y")
            for r in run.iter("Read")
        ],
        lanes=lanes,
        surfaces=surfaces,
        swaths=swaths,
        tile_count=tile_count,
        tiles=tiles,
    )


def snapshot(folder: Path, under: str = "") -> dict[str, int]:
    """Relative path -> size of every file (under a sub-folder if given)."""
    base = folder / under if under else folder
    sizes: dict[str, int] = {}
    for directory, _, files in os.walk(base):
        for name in files:
            full = os.path.join(directory, name)
            sizes[os.path.relpath(full, folder)] = os.path.getsize(full)
    return sizes


def structure(path: Path) -> set[tuple[str, tuple[str, ...]]]:
    """Element paths with their attribute names: what 'same shape' means for two XML files."""
    shape: set[tuple[str, tuple[str, ...]]] = set()

    def walk(node: ET.Element, prefix: str) -> None:
        here = f"{prefix}/{node.tag}"
        shape.add((here, tuple(sorted(node.attrib))))
        for child in node:
            walk(child, here)

    walk(ET.parse(path).getroot(), "")
    return shape


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert REFERENCE.is_dir(), f"reference run folders not found at {REFERENCE} (set SEQFERRY_ILLUMINA_REFERENCE)"
    return REFERENCE


@pytest.fixture(scope="session")
def read_run_info() -> Callable[[Path], RunInfo]:
    return parse_run_info


@pytest.fixture(scope="session")
def sizes_of() -> Callable[..., dict[str, int]]:
    return snapshot


@pytest.fixture(scope="session")
def xml_shape() -> Callable[[Path], set[tuple[str, tuple[str, ...]]]]:
    return structure
