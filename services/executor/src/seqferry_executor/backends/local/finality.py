"""When a file of a run folder is final, from the way its instrument writes (the registry's layout and markers).

A sequencer writes its run folder in a known order (``seqferry_shared.sequencers``; the simulator writes the same
order, and a test replays it for every instrument and checks that no file judged final ever changes afterwards):

- base calls, cycle by cycle: ``L00n/C{c}.1/*`` (``bcl`` and ``cbcl`` layouts) or ``L00n/{c:04d}.bcl.bgzf`` (``bgzf``:
  one file per lane *and cycle*, not one file that grows across cycles). A cycle's files are final once the lane
  holds a later cycle, and every base-call file is final once RTA's marker (``RTAComplete.txt``, each instrument's
  first marker) is there;
- RTA 3's per-cycle InterOp folders ``InterOp/C{c}.1/``: final once a later cycle's folder exists; the newest
  cycle's files, written once at the end of their cycle, take the optimistic path meanwhile (below);
- ``InterOp/*.bin``: appended every cycle (RTA 1 and 2) or merged at the end (RTA 3): final only once RTA is done;
- files whose header states their full length (``.cbcl``, uncompressed ``.bcl``, ``.filter``, ``.locs``) or that
  end with a known trailer (BGZF's end-of-file block): final as soon as they are complete, which the engine checks
  on the descriptor it opened for the upload (``complete``) — the newest cycle's files need not wait for the next.

Files the pattern does not cover (run-level XML, sample sheets, logs, anything outside a run folder) take the
optimistic path: shipped once briefly quiet, checked unchanged after the upload, sent again if they change. A verdict
only decides *when* a file is sent: every upload is still checked unchanged after it, any later change is sent
again, and the completion marker still waits for every other file of its run to be verified.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from enum import StrEnum

from seqferry_executor.backends.local.scan import FileEntry, FolderScan
from seqferry_shared.sequencers import InstrumentSpec, SequencerPath, run_of

BASECALLS = ("Data", "Intensities", "BaseCalls")
_LANE = re.compile(r"L\d{3}")
_CYCLE_FOLDER = re.compile(r"C(\d+)\.1")
_BGZF_CYCLE = re.compile(r"(\d{4})\.bcl\.bgzf")
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
HEADER_READ_MAX = 16 * 1024 * 1024  # a CBCL header of 1,000,000 tiles: anything larger is not one


class Finality(StrEnum):
    FINAL = "final"  # the instrument is done with it
    COMPLETE_WHEN_FULL = "when-full"  # final once its length is what its own header or trailer says
    GROWING = "growing"  # the instrument still writes it
    UNKNOWN = "unknown"  # the pattern does not say: the optimistic path


@dataclass(slots=True)
class _Run:
    spec: InstrumentSpec
    rta_done: bool = False
    lanes: dict[str, int] = field(default_factory=dict)  # lane folder -> highest cycle seen in it
    interop: int = 0  # highest InterOp/C{c}.1 folder


def _cycle(pattern: re.Pattern[str], name: str) -> int:
    found = pattern.fullmatch(name)
    return int(found.group(1)) if found else 0


class RunFolders:
    """What one pass has seen of each run folder, fed the folders of a walk in order (parents first)."""

    def __init__(self, sequencers: list[SequencerPath]) -> None:
        self._sequencers = sequencers
        self._runs: dict[str, _Run] = {}
        self._where: dict[str, tuple[str, tuple[str, ...]] | None] = {}

    def _locate(self, folder: str) -> tuple[str, tuple[str, ...]] | None:
        """The run folder holding ``folder`` and the folder's path inside it (cached per folder)."""
        if folder in self._where:
            return self._where[folder]
        found = run_of(folder + "/", self._sequencers)
        where = None
        if found is not None:
            root, run_id = found
            run_path = f"{root.path.rstrip('/')}/{run_id}"
            if folder == run_path or folder.startswith(run_path + "/"):
                inside = folder[len(run_path) + 1 :]
                where = (run_path, tuple(inside.split("/")) if inside else ())
        self._where[folder] = where
        return where

    def observe(self, scan: FolderScan) -> None:
        where = self._locate(scan.nas_path)
        if where is None:
            return
        run_path, parts = where
        if not parts:
            found = run_of(run_path + "/", self._sequencers)
            assert found is not None
            spec = found[0].spec
            self._runs[run_path] = _Run(spec, rta_done=spec.markers[0] in scan.markers)
            return
        run = self._runs.get(run_path)
        if run is None:
            return
        if parts[:3] == BASECALLS and len(parts) == 4 and _LANE.fullmatch(parts[3]):
            highest = max((_cycle(_CYCLE_FOLDER, name) for name in scan.subfolders), default=0)
            if not run.spec.basecalls.cycle_per_folder:
                highest = max(highest, *(_cycle(_BGZF_CYCLE, name) for name in scan.names or ()), 0)
            run.lanes[parts[3]] = max(run.lanes.get(parts[3], 0), highest)
        elif parts == ("InterOp",):
            run.interop = max((_cycle(_CYCLE_FOLDER, name) for name in scan.subfolders), default=0)

    def verdict(self, entry: FileEntry) -> Finality:
        folder, _, name = entry.nas_path.rpartition("/")
        where = self._locate(folder)
        if where is None:
            return Finality.UNKNOWN
        run = self._runs.get(where[0])
        parts = where[1]
        if run is None or not parts:
            return Finality.UNKNOWN
        if parts[:3] == BASECALLS:
            return self._basecall(run, parts, name)
        if parts[0] == "InterOp":
            if len(parts) == 1:
                return Finality.FINAL if run.rta_done else Finality.GROWING
            cycle = _cycle(_CYCLE_FOLDER, parts[1]) if len(parts) == 2 else 0
            if cycle and (run.rta_done or run.interop > cycle):
                return Finality.FINAL
            return Finality.UNKNOWN
        if parts[:2] == BASECALLS[:2] and _full_length_known(name):
            return Finality.FINAL if run.rta_done else Finality.COMPLETE_WHEN_FULL
        return Finality.UNKNOWN

    def _basecall(self, run: _Run, parts: tuple[str, ...], name: str) -> Finality:
        cycle = 0
        per_folder = run.spec.basecalls.cycle_per_folder
        if len(parts) == 4 and _LANE.fullmatch(parts[3]) and not per_folder:
            cycle = _cycle(_BGZF_CYCLE, name)
        elif len(parts) == 5 and _LANE.fullmatch(parts[3]) and per_folder:
            cycle = _cycle(_CYCLE_FOLDER, parts[4])
        if run.rta_done:
            return Finality.FINAL
        if cycle and run.lanes.get(parts[3], 0) > cycle:
            return Finality.FINAL
        if _full_length_known(name):
            return Finality.COMPLETE_WHEN_FULL
        return Finality.GROWING if cycle else Finality.UNKNOWN


def _full_length_known(name: str) -> bool:
    return name.endswith((".cbcl", ".bcl", ".filter", ".locs", ".bcl.bgzf"))


def complete(fd: int, entry: FileEntry) -> bool:
    """True if the open file is as long as its own header says (or ends with its format's trailer)."""
    name = entry.nas_path
    size = entry.size
    try:
        if name.endswith(".bcl.bgzf"):
            return size >= len(BGZF_EOF) and os.pread(fd, len(BGZF_EOF), size - len(BGZF_EOF)) == BGZF_EOF
        if name.endswith(".bcl"):
            head = os.pread(fd, 4, 0)
            return len(head) == 4 and size == 4 + struct.unpack("<I", head)[0]
        if name.endswith(".filter"):
            head = os.pread(fd, 12, 0)
            return len(head) == 12 and size == 12 + struct.unpack("<III", head)[2]
        if name.endswith(".locs"):
            head = os.pread(fd, 12, 0)
            return len(head) == 12 and size == 12 + 8 * struct.unpack("<IfI", head)[2]
        if name.endswith(".cbcl"):
            return size == _cbcl_length(fd)
    except (OSError, struct.error):
        return False
    return False


def _cbcl_length(fd: int) -> int:
    """A CBCL's full length: its header's size plus every tile's compressed block (-1 if the header is not whole).

    Header: version (u16), header size (u32), bits per base call and per quality (u8 each), bin count (u32), the bins
    (u32 pairs), tile count (u32), per tile number, clusters, uncompressed and compressed block size (u32 each), then
    the non-PF flag (u8). A writer that fills the sizes in last is caught too: until then they do not add up.
    """
    head = os.pread(fd, 12, 0)
    if len(head) < 12:
        return -1
    _, header_size, _, _, bins = struct.unpack("<HIBBI", head)
    if header_size > HEADER_READ_MAX or bins > 1024:
        return -1
    header = os.pread(fd, header_size, 0)
    tiles_at = 12 + 8 * bins
    if len(header) < header_size or header_size < tiles_at + 4:
        return -1
    (tiles,) = struct.unpack_from("<I", header, tiles_at)
    if tiles_at + 4 + 16 * tiles + 1 > header_size:
        return -1
    compressed = sum(int(struct.unpack_from("<I", header, tiles_at + 4 + 16 * i + 12)[0]) for i in range(tiles))
    return int(header_size) + compressed
