"""Reference-parity mode: the sample data lands in ``<sequencer path>/<date>/<uuid>/`` as the AWS sample did."""

from __future__ import annotations

import posixpath
from datetime import datetime
from pathlib import Path

from seqferry_simulator.domain.errors import SimulatorError


class UnsafeKeyError(SimulatorError):
    """An object key would land outside its destination folder."""


def destination_folder(sequencer_path: str, date_format: str, moment: datetime, unique: str) -> str:
    """NAS-absolute folder for one copy, e.g. ``/sequencers/incoming/miseq/251125/<uuid>``."""
    return posixpath.join(sequencer_path, moment.strftime(date_format), unique)


def relative_key(key: str, prefix: str) -> str:
    """The part of ``key`` under ``prefix``, refused when it is empty, absolute or climbs out with '..'."""
    if not key.startswith(prefix):
        raise UnsafeKeyError(f"key {key!r} is not under prefix {prefix!r}")
    rel = key[len(prefix) :].lstrip("/")
    parts = rel.split("/")
    if not rel or rel.endswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in rel:
        raise UnsafeKeyError(f"key {key!r} does not name a file inside the prefix")
    return rel


def local_path(nas_root: Path, nas_folder: str, rel: str) -> Path:
    return nas_root / nas_folder.lstrip("/") / rel
