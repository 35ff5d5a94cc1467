"""The checksum manifest written next to a delivered run: every object with its size, checksum and version."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from seqferry_notifier.domain.runs import RunRecord

SCHEMA = "seqferry.run-manifest/1"
# Strongest first; S3 stores at most one full-object or composite checksum per object.
_ALGORITHMS = ("SHA256", "CRC64NVME", "CRC32C", "SHA1", "CRC32")


class ManifestEntry(BaseModel):
    key: str
    size: int
    checksum_algorithm: str | None = None
    checksum: str | None = None
    checksum_type: str | None = None
    etag: str | None = None
    version_id: str | None = None


def _checksum(source: Mapping[str, Any]) -> tuple[str | None, str | None]:
    for algorithm in _ALGORITHMS:
        value = source.get(f"Checksum{algorithm}")
        if value:
            return algorithm, str(value)
    return None, None


def _etag(value: object) -> str | None:
    return str(value).strip('"') if value else None


def entry_from_attributes(key: str, response: Mapping[str, Any]) -> ManifestEntry:
    """From a GetObjectAttributes(ETag, Checksum, ObjectSize) response."""
    checksum = response.get("Checksum") or {}
    algorithm, value = _checksum(checksum)
    return ManifestEntry(
        key=key,
        size=int(response.get("ObjectSize", 0)),
        checksum_algorithm=algorithm,
        checksum=value,
        checksum_type=checksum.get("ChecksumType") if algorithm else None,
        etag=_etag(response.get("ETag")),
        version_id=response.get("VersionId"),
    )


def entry_from_head(key: str, response: Mapping[str, Any]) -> ManifestEntry:
    """From a HeadObject(ChecksumMode=ENABLED) response."""
    algorithm, value = _checksum(response)
    return ManifestEntry(
        key=key,
        size=int(response.get("ContentLength", 0)),
        checksum_algorithm=algorithm,
        checksum=value,
        checksum_type=response.get("ChecksumType") if algorithm else None,
        etag=_etag(response.get("ETag")),
        version_id=response.get("VersionId"),
    )


def build_manifest(
    run: RunRecord, entries: Sequence[ManifestEntry], *, marker: str, generated_at: datetime, executions: list[str]
) -> bytes:
    """The manifest document (JSON, keys sorted for stable output)."""
    ordered = sorted(entries, key=lambda e: e.key)
    document = {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "instrument": run.instrument.value if run.instrument else None,
        "bucket": run.bucket,
        "prefix": run.s3_prefix,
        "completion_marker": marker,
        "generated_at": generated_at.isoformat(),
        "executions": executions,
        "files": len(ordered),
        "bytes": sum(e.size for e in ordered),
        "objects": [e.model_dump() for e in ordered],
    }
    return json.dumps(document, indent=1, sort_keys=True).encode()
