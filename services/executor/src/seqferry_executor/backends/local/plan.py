"""What one pass does with each file the scan did not find unchanged, and the per-run summary: pure functions.

- *unchanged*: size, mtime and inode equal what the change index recorded at the last verified upload (decided by
  the scan, see ``scan`` and ``index``);
- *pending*: not yet settled for what its finality allows (below), left for a later pass;
- *confirm*: the index was rebuilt from the bucket and knows the object's size only: one HeadObject decides;
- *ship*: new or changed and settled.

How long a file must have been left alone before it ships depends on what the instrument's writing pattern says of
it (``finality``): a final file, and a file the pattern does not cover, ship once quiet for ``settle_s`` (longer
than the NAS's timestamp granularity, so any later write shows as a change) and are checked unchanged after the
upload; a file the instrument still writes waits ``hold_s`` without a change (an aborted run's last cycle). With
the optimistic path off, files the pattern does not cover wait the quiet period, as before.

Completion markers (``CopyComplete.txt`` ...) go last, and only when nothing else of their run is pending,
failed or still to ship in the same pass: whoever watches the bucket for a marker then finds a complete run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from seqferry_executor.backends.local.finality import Finality, RunFolders
from seqferry_executor.backends.local.index import IndexedFile
from seqferry_executor.backends.local.scan import Candidate, FileEntry, FolderScan, ScanFailure, object_key
from seqferry_shared.events.models import RunSummary
from seqferry_shared.sequencers import SequencerPath, run_of

# A timestamp this far in the future means the NAS clock runs ahead: watch the file instead of trusting it.
FUTURE_TOLERANCE_NS = 1_000_000_000


class Action(StrEnum):
    UNCHANGED = "unchanged"
    PENDING = "pending"
    CONFIRM = "confirm"
    SHIP = "ship"


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a file must be left alone before it ships, by what its finality says (nanoseconds)."""

    settle_ns: int
    quiet_ns: int
    hold_ns: int
    optimistic: bool = True

    @classmethod
    def of(cls, *, settle_s: float, quiet_s: float, hold_s: float, optimistic: bool = True) -> Timing:
        quiet = int(quiet_s * 1e9)
        return cls(min(int(settle_s * 1e9), quiet), quiet, max(int(hold_s * 1e9), quiet), optimistic)

    def needed(self, finality: Finality) -> int:
        if finality is Finality.GROWING:
            return self.hold_ns
        if finality is Finality.UNKNOWN and not self.optimistic:
            return self.quiet_ns
        return self.settle_ns


@dataclass(slots=True)
class StabilityTracker:
    """Remembers when each path was first seen with its current (size, mtime, ctime), across passes.

    Only consulted for files whose timestamps lie in the future by the executor's clock; otherwise the
    timestamps themselves prove how long the file has been quiet.
    """

    first_seen: dict[str, tuple[tuple[int, int, int], int]] = field(default_factory=dict)

    def quiet_since(self, entry: FileEntry, now_ns: int) -> int:
        signature = (entry.size, entry.mtime_ns, entry.ctime_ns)
        known = self.first_seen.get(entry.nas_path)
        if known is None or known[0] != signature:
            self.first_seen[entry.nas_path] = (signature, now_ns)
            return now_ns
        return known[1]

    def forget(self, nas_paths: Iterable[str]) -> None:
        for nas_path in nas_paths:
            self.first_seen.pop(nas_path, None)


def quiet_for(entry: FileEntry, now_ns: int, tracker: StabilityTracker) -> int:
    """How long neither content (mtime) nor metadata (ctime) changed.

    ctime matters because copy tools write the content and then set an old mtime: the mtime looks ancient
    while the file is still being written, the ctime does not.
    """
    last_change = max(entry.mtime_ns, entry.ctime_ns)
    if last_change > now_ns + FUTURE_TOLERANCE_NS:
        return now_ns - tracker.quiet_since(entry, now_ns)
    return now_ns - last_change


def is_stable(entry: FileEntry, now_ns: int, quiet_ns: int, tracker: StabilityTracker) -> bool:
    """Stable once neither content nor metadata changed for ``quiet_ns``."""
    return quiet_for(entry, now_ns, tracker) >= quiet_ns


def classify(entry: FileEntry, known: IndexedFile | None, *, stable: bool) -> Action:
    if known is not None and known.size == entry.size:
        if known.mtime_ns is None:
            return Action.CONFIRM if stable else Action.PENDING
        if known.mtime_ns == entry.mtime_ns and (known.ino is None or known.ino == entry.ino):
            return Action.UNCHANGED
    return Action.SHIP if stable else Action.PENDING


def is_marker(nas_path: str, sequencers: Sequence[SequencerPath]) -> bool:
    """True for a completion marker at the top of a run folder."""
    found = run_of(nas_path, list(sequencers))
    if found is None:
        return False
    root, run_id = found
    rest = nas_path[len(root.path.rstrip("/")) + 1 + len(run_id) :]
    name = rest.lstrip("/")
    if "/" in name or not name:
        return False
    return name == root.instrument.completion_marker


@dataclass(slots=True)
class Plan:
    ship: list[FileEntry] = field(default_factory=list)
    confirm: list[FileEntry] = field(default_factory=list)
    markers: list[FileEntry] = field(default_factory=list)
    unchanged: int = 0
    pending: list[FileEntry] = field(default_factory=list)
    # Keys to ship only once their header says they are whole (else they wait the hold period).
    when_full: set[str] = field(default_factory=set)
    # Pending files that may ship within this pass once settled (entry, is a marker, only once whole): the pass
    # watches them for a while instead of leaving them to the next.
    soon: list[tuple[FileEntry, bool, bool]] = field(default_factory=list)

    @property
    def to_transfer(self) -> list[FileEntry]:
        return [*self.ship, *self.confirm, *self.markers]


def make_plan(
    candidates: Iterable[Candidate],
    *,
    now_ns: int,
    timing: Timing,
    tracker: StabilityTracker,
    sequencers: Sequence[SequencerPath],
    runs: RunFolders | None = None,
    busy: frozenset[str] | set[str] = frozenset(),
) -> Plan:
    """Decide each candidate's fate. ``busy`` keys are being uploaded by another pass: pending here."""
    plan = Plan()
    for entry, known in candidates:
        if entry.key in busy:
            plan.pending.append(entry)
            continue
        marker = is_marker(entry.nas_path, sequencers)
        finality = Finality.FINAL if marker else runs.verdict(entry) if runs is not None else Finality.UNKNOWN
        needed = timing.needed(finality)
        quiet = quiet_for(entry, now_ns, tracker)
        action = classify(entry, known, stable=quiet >= needed)
        if action is Action.UNCHANGED:
            plan.unchanged += 1
        elif action is Action.PENDING:
            plan.pending.append(entry)
            if needed <= timing.settle_ns and classify(entry, known, stable=True) is Action.SHIP:
                plan.soon.append((entry, marker, finality is Finality.COMPLETE_WHEN_FULL))
        elif action is Action.CONFIRM:
            plan.confirm.append(entry)
        elif marker:
            plan.markers.append(entry)
        else:
            plan.ship.append(entry)
            if finality is Finality.COMPLETE_WHEN_FULL and quiet < timing.hold_ns:
                plan.when_full.add(entry.key)
    return plan


class RunBook:
    """Per-run summaries of one pass, keyed by the run folder's NAS path."""

    def __init__(self, sequencers: Sequence[SequencerPath]) -> None:
        self._sequencers = list(sequencers)
        self._runs: dict[str, RunSummary] = {}
        self._markers: dict[str, frozenset[str]] = {}
        self._cache: dict[str, str | None] = {}

    def _folder_of(self, nas_path: str) -> str | None:
        """The run folder holding ``nas_path`` (cached per parent folder: one lookup per folder, not per file)."""
        parent = nas_path.rsplit("/", 1)[0]
        if parent in self._cache:
            return self._cache[parent]
        found = run_of(nas_path, self._sequencers)
        folder = None
        if found is not None:
            root, run_id = found
            folder = f"{root.path.rstrip('/')}/{run_id}"
            if folder == nas_path:
                folder = None  # a file directly in a sequencer folder belongs to no run
            elif folder not in self._runs:
                # Names in the summary are escaped as object keys are, so they are valid UTF-8 and match the bucket.
                key = object_key(folder)
                self._runs[folder] = RunSummary(run_id=object_key(run_id), nas_path="/" + key, s3_prefix=key + "/")
                self._markers[folder] = frozenset(root.instrument.markers)
        self._cache[parent] = folder
        return folder

    def _run_for(self, nas_path: str) -> RunSummary | None:
        folder = self._folder_of(nas_path)
        return self._runs[folder] if folder is not None else None

    def add_folder(self, scan: FolderScan) -> None:
        """Totals and markers of one scanned folder (every included file, unchanged or not), and its problems."""
        if scan.files:
            folder = self._folder_of(scan.nas_path + "/")
            if folder is not None:
                run = self._runs[folder]
                run.files_total += scan.files
                run.bytes_total += scan.bytes
                if folder == scan.nas_path:
                    run.markers.extend(sorted(name for name in scan.markers if name in self._markers[folder]))
        for failure in scan.failures:
            self.add_failure(failure)

    def add_failure(self, failure: ScanFailure) -> None:
        run = self._run_for(failure.nas_path)
        if run is not None:
            run.files_failed += 1

    def transferred(self, entry: FileEntry) -> None:
        run = self._run_for(entry.nas_path)
        if run is not None:
            run.files_transferred += 1
            run.bytes_transferred += entry.size

    def verified(self, entry: FileEntry) -> None:
        run = self._run_for(entry.nas_path)
        if run is not None:
            run.files_verified += 1

    def failed(self, entry: FileEntry) -> None:
        run = self._run_for(entry.nas_path)
        if run is not None:
            run.files_failed += 1

    def deferred(self, entry: FileEntry) -> None:
        """A file that waits for a later pass (not settled, a held-back marker, a changed source)."""
        run = self._run_for(entry.nas_path)
        if run is not None:
            run.files_pending += 1

    def resumed(self, entry: FileEntry) -> None:
        """A file counted pending that this pass ships after all (it settled while the pass ran)."""
        run = self._run_for(entry.nas_path)
        if run is not None:
            run.files_pending -= 1

    def blocked(self, entry: FileEntry) -> bool:
        """True if the marker's run has files pending or failed: the marker must wait."""
        run = self._run_for(entry.nas_path)
        return run is not None and (run.files_pending > 0 or run.files_failed > 0)

    def summaries(self) -> list[RunSummary]:
        return [run.model_copy(deep=True) for _, run in sorted(self._runs.items())]
