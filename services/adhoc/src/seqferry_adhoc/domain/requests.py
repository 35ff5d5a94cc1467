"""From accepted patterns to events and result objects (pure: ids are derived, nothing is sent or stored here).

Ids of everything a manifest causes derive from the manifest's identity (bucket, key, version or ETag), so
processing the same manifest twice — a redelivered notification, a retry after a crash halfway — produces the
same request id and the same event ids, and the executor's idempotency on ``meta.event_id`` drops the copy.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from seqferry_adhoc.domain.manifest import ManifestLimits, ParsedManifest, Status
from seqferry_shared.events.models import AdhocManifestProcessed, Meta, RejectedLine, TransferRequested
from seqferry_shared.patterns import FILTER_VALUE_LIMIT, escape, split_filter
from seqferry_shared.resources import ADHOC_PREFIX, ADHOC_RESULTS_PREFIX, manifest_result_key

RESULT_SCHEMA_VERSION = "1.0"
# EventBridge refuses entries over 256 KiB; the lists in ``Adhoc Manifest Processed`` are cut to this many bytes
# of JSON and the result object (``manifest_result_key``) always holds the complete lists.
EVENT_LIST_BUDGET = 200_000
_NAMESPACE = uuid.UUID("6f1c1a52-3c2e-4f57-9a43-6a0b7d0c5e11")
_REQUESTED_BY_MANIFEST = "adhoc-manifest"


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """Identity of one manifest object version, as the S3 notification names it."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None
    """Tells two uploads of identical content apart when there is no version id (S3 sequencer or event time)."""

    @property
    def identity(self) -> str:
        """Stable key of this upload: the version id where versioning is on, else the ETag and the sequencer.

        A redelivered notification repeats all of these; a new upload of the same content changes the sequencer.
        """
        if self.version_id:
            version = f"v:{self.version_id}"
        else:
            version = f"e:{(self.etag or '').strip(chr(34))}@{self.sequencer or ''}"
        return f"{self.bucket}\n{self.key}\n{version}"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_manifest_key(key: str) -> bool:
    """Objects under ``adhoc/`` are manifests, except the service's own results and folder placeholders."""
    return key.startswith(ADHOC_PREFIX) and not key.startswith(ADHOC_RESULTS_PREFIX) and not key.endswith("/")


def manifest_request_id(ref: ManifestRef) -> str:
    return "m-" + hashlib.sha256(ref.identity.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


def api_request_id() -> str:
    return "r-" + uuid.uuid4().hex


def idempotency_key(ref: ManifestRef) -> str:
    return "adhoc#manifest#" + hashlib.sha256(ref.identity.encode("utf-8", errors="surrogatepass")).hexdigest()


def event_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, name)


def build_requests(
    request_id: str,
    patterns: Sequence[str],
    *,
    reason: str,
    requested_by: str,
    task: str | None = None,
    limit: int = FILTER_VALUE_LIMIT,
) -> list[TransferRequested]:
    """One ``Transfer Requested`` per filter-sized group of patterns (ids ``<id>`` or ``<id>-1``, ``<id>-2``...).

    A group fits DataSync's filter value (``limit`` characters) and an EventBridge entry (multi-byte characters
    can make 102,400 characters weigh more than the 256 KiB an entry may hold).
    """
    groups = [part for group in split_filter(patterns, limit) for part in _fit_entry(group)]
    requests = []
    for number, group in enumerate(groups, start=1):
        part_id = request_id if len(groups) == 1 else f"{request_id}-{number}"
        requests.append(
            TransferRequested(
                meta=Meta(event_id=event_id(f"requested:{part_id}"), correlation_id=request_id),
                request_id=part_id,
                task=task,
                includes=list(group),
                reason=reason[:1024],
                requested_by=requested_by[:256],
            )
        )
    return requests


def _fit_entry(group: list[str], budget: int = EVENT_LIST_BUDGET) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    used = 0
    for pattern in group:
        cost = len(json.dumps(pattern, ensure_ascii=False).encode("utf-8", errors="surrogatepass")) + 1
        if parts[-1] and used + cost > budget:
            parts.append([])
            used = 0
        parts[-1].append(pattern)
        used += cost
    return parts


def manifest_requests(ref: ManifestRef, parsed: ParsedManifest, *, task: str | None = None) -> list[TransferRequested]:
    if not parsed.accepted:
        return []
    version = ref.version_id or ref.etag or "unversioned"
    reason = f"ad-hoc manifest {escape(ref.uri, 900)} ({escape(version, 100)})"
    return build_requests(
        manifest_request_id(ref), parsed.patterns, reason=reason, requested_by=_REQUESTED_BY_MANIFEST, task=task
    )


class ManifestInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


class AcceptedLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(description="1-based line number in the manifest.")
    pattern: str


class DuplicateLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int
    first_line: int = Field(description="Line where the same pattern was first accepted.")


class LimitsInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_bytes: int
    max_lines: int
    max_line_length: int


class ManifestResult(BaseModel):
    """The result object written to ``adhoc/results/<manifest name>.json``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = RESULT_SCHEMA_VERSION
    status: Status
    manifest: ManifestInfo
    processed_at: datetime
    request_id: str | None = Field(description="Id of the ad-hoc request; null when nothing was accepted.")
    request_ids: list[str] = Field(description="Ids of the Transfer Requested events (one per filter-sized part).")
    accepted: list[AcceptedLine]
    rejected: list[RejectedLine] = Field(description="Line 0 means the manifest as a whole.")
    duplicates: list[DuplicateLine]
    roots: list[str]
    limits: LimitsInfo

    def to_json(self) -> bytes:
        # ensure_ascii: whatever the manifest or its key hold, the result carries no raw control character.
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=True, indent=2).encode("ascii")


def build_result(
    ref: ManifestRef,
    parsed: ParsedManifest,
    requests: Sequence[TransferRequested],
    *,
    roots: Sequence[str],
    limits: ManifestLimits,
    processed_at: datetime,
) -> ManifestResult:
    return ManifestResult(
        status=parsed.status,
        manifest=ManifestInfo(bucket=ref.bucket, key=ref.key, version_id=ref.version_id, etag=ref.etag, size=ref.size),
        processed_at=processed_at,
        request_id=requests[0].meta.correlation_id if requests else None,
        request_ids=[r.request_id for r in requests],
        accepted=[AcceptedLine(line=a.line, pattern=a.pattern) for a in parsed.accepted],
        rejected=[RejectedLine(line=r.line, text=r.text, reason=r.reason) for r in parsed.rejected],
        duplicates=[DuplicateLine(line=d.line, first_line=d.first_line) for d in parsed.duplicates],
        roots=list(roots),
        limits=LimitsInfo(
            max_bytes=limits.max_bytes, max_lines=limits.max_lines, max_line_length=limits.max_line_length
        ),
    )


def processed_event(
    ref: ManifestRef, result: ManifestResult, *, budget: int = EVENT_LIST_BUDGET
) -> AdhocManifestProcessed:
    """The ``Adhoc Manifest Processed`` event; its lists are cut to fit an EventBridge entry (the result is whole)."""
    remaining = budget
    accepted: list[str] = []
    for line in result.accepted:
        cost = len(json.dumps(line.pattern)) + 1
        if cost > remaining:
            break
        accepted.append(line.pattern)
        remaining -= cost
    rejected: list[RejectedLine] = []
    for rejection in result.rejected:
        cost = len(rejection.model_dump_json()) + 1
        if cost > remaining:
            break
        rejected.append(rejection)
        remaining -= cost
    return AdhocManifestProcessed(
        meta=Meta(
            event_id=event_id(f"processed:{ref.identity}"),
            correlation_id=result.request_id or manifest_request_id(ref),
        ),
        bucket=ref.bucket,
        key=ref.key,
        version_id=ref.version_id,
        etag=ref.etag,
        accepted=accepted,
        rejected=rejected,
        request_ids=result.request_ids,
        result_key=manifest_result_key(ref.key),
    )
