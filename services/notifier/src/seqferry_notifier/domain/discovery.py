"""Run folders a successful DataSync execution covered, found from the bucket alone (no NAS mount anywhere).

DataSync reports totals only. Its include patterns say which instrument folders and run-folder name prefixes an
execution covered; S3 keys are NAS paths relative to the NAS root (the DataSync source location is the NAS root
and the S3 location the bucket root, as for the local backend). So each pattern becomes a listing scope:

- ``<instrument folder>/<name prefix>*`` (a window): list ``<folder key>/<name prefix>`` with delimiter ``/``;
  every common prefix is a run folder;
- ``<instrument folder>/<run>`` or anything inside it (an ad-hoc request): that run folder, no listing needed;
- the instrument folder itself, or ``<folder>/*``: every run folder of the instrument.

Patterns outside the sequencer paths (the ad-hoc folder) cover no run.

A run folder's *summary* is what S3 held when the execution ended: objects last modified after its end were
written by a later execution and are left out, so the delivery rule, which compares that summary with a fresh
listing, waits for the later execution instead of announcing a run from a half-copied state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from seqferry_notifier.domain.runs import ObjectInfo
from seqferry_shared.events.models import RunSummary
from seqferry_shared.sequencers import SequencerPath, run_of


@dataclass(frozen=True, slots=True)
class Scope:
    """Where to look for run folders: one known run folder, or a prefix to list with delimiter ``/``."""

    root: SequencerPath
    run_id: str | None = None
    name_prefix: str = ""

    @property
    def root_key(self) -> str:
        return root_key(self.root)

    @property
    def list_prefix(self) -> str:
        return f"{self.root_key}{self.name_prefix}"


def root_key(root: SequencerPath) -> str:
    """The key prefix of an instrument folder (``/sequencers/incoming/miseq`` -> ``sequencers/incoming/miseq/``)."""
    stripped = root.path.strip("/")
    return f"{stripped}/" if stripped else ""


def patterns_of(includes: Iterable[str]) -> list[str]:
    """Include patterns, one per entry: DataSync's DescribeTaskExecution gives them ``|``-joined."""
    return [p for value in includes for p in value.split("|") if p]


def scopes(includes: Iterable[str], sequencers: Sequence[SequencerPath]) -> list[Scope]:
    """The listing scopes of an execution's include patterns (duplicates removed, order kept)."""
    found: dict[Scope, None] = {}
    roots = list(sequencers)
    for pattern in patterns_of(includes):
        path = pattern.removesuffix("*")
        for root in roots:
            folder = root.path.rstrip("/")
            if path in (folder, f"{folder}/"):
                found[Scope(root)] = None
                break
            located = run_of(path, [root])
            if located is None:
                continue
            _, name = located
            inside = path[len(folder) + 1 :]
            if "/" in inside or not pattern.endswith("*"):
                found[Scope(root, run_id=name)] = None
            else:
                found[Scope(root, name_prefix=name)] = None
            break
    return list(found)


def run_folder(scope: Scope, common_prefix: str) -> str | None:
    """The run folder name of one common prefix of a scope's listing (``.../<run>/`` -> ``<run>``)."""
    if not common_prefix.startswith(scope.root_key) or not common_prefix.endswith("/"):
        return None
    name = common_prefix[len(scope.root_key) : -1]
    return name if name and "/" not in name else None


def summary_from_objects(
    root: SequencerPath, run_id: str, objects: Iterable[ObjectInfo], *, until: datetime
) -> RunSummary:
    """What S3 held of one run folder when the execution ended (``until``): files, bytes, completion markers."""
    nas_path = f"{root.path.rstrip('/')}/{run_id}"
    prefix = f"{root_key(root)}{run_id}/"
    markers = frozenset(root.instrument.markers)
    summary = RunSummary(run_id=run_id, nas_path=nas_path, s3_prefix=prefix)
    for obj in objects:
        if not obj.key.startswith(prefix):
            continue
        if obj.last_modified is not None and obj.last_modified > until:
            continue
        summary.files_total += 1
        summary.bytes_total += obj.size
        name = obj.key[len(prefix) :]
        if name in markers:
            summary.markers.append(name)
    # What this execution itself copied into the folder is unknown (DataSync counts per execution only), so the
    # transferred counters stay 0: repeated discoveries of an unchanged folder must not look like progress.
    summary.markers.sort()
    return summary
