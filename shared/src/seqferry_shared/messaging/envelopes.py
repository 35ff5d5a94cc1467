"""Transport envelopes: how SQS bodies wrap an EventBridge event or an S3 notification.

Envelopes are parsed here, once; handlers receive the payload as a model (our event details, the typed AWS events
of :mod:`seqferry_shared.events.aws`, S3 object records), never the envelope (see :mod:`.routing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from seqferry_shared.errors import RejectError


class EnvelopeError(RejectError):
    """The message body is not an envelope seqferry understands; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class EventBridgeEvent:
    id: str
    detail_type: str
    source: str
    time: str
    detail: dict[str, Any]
    resources: list[str] = field(default_factory=list)
    account: str = ""
    region: str = ""

    def as_json(self) -> dict[str, Any]:
        """The event in EventBridge's own JSON shape (what the typed AWS event models validate)."""
        return {
            "id": self.id,
            "detail-type": self.detail_type,
            "source": self.source,
            "time": self.time or None,
            "resources": list(self.resources),
            "account": self.account,
            "region": self.region,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class S3ObjectRecord:
    event_name: str
    bucket: str
    key: str  # URL-decoded
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: str | None

    @property
    def dedup_key(self) -> str:
        """Identity of the object version this record announces (bucket, key and version or ETag)."""
        return f"{self.bucket}/{self.key}#{self.version_id or self.etag or self.sequencer or ''}"


@dataclass(frozen=True, slots=True)
class S3TestEvent:
    bucket: str


Envelope = EventBridgeEvent | list[S3ObjectRecord] | S3TestEvent


def parse_body(body: str) -> Envelope:
    """Parse an SQS message body into one of the known envelopes."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise EnvelopeError(f"body is a JSON {type(data).__name__}, expected an object")
    if data.get("Event") == "s3:TestEvent":
        return S3TestEvent(bucket=str(data.get("Bucket", "")))
    if "Records" in data:
        return parse_s3_records(data["Records"])
    if "detail-type" in data:
        return parse_eventbridge(data)
    raise EnvelopeError("body is neither an EventBridge event ('detail-type') nor an S3 notification ('Records')")


def parse_eventbridge(data: dict[str, Any]) -> EventBridgeEvent:
    missing = [k for k in ("id", "detail-type", "source", "detail") if k not in data]
    if missing:
        raise EnvelopeError(f"EventBridge event lacks field(s): {', '.join(missing)}")
    detail = data["detail"]
    if not isinstance(detail, dict):
        raise EnvelopeError("EventBridge field 'detail' must be an object")
    return EventBridgeEvent(
        id=str(data["id"]),
        detail_type=str(data["detail-type"]),
        source=str(data["source"]),
        time=str(data.get("time", "")),
        detail=detail,
        resources=[str(r) for r in data.get("resources") or []],
        account=str(data.get("account", "")),
        region=str(data.get("region", "")),
    )


def parse_s3_records(records: Any) -> list[S3ObjectRecord]:
    if not isinstance(records, list):
        raise EnvelopeError("S3 notification field 'Records' must be a list")
    parsed: list[S3ObjectRecord] = []
    for index, record in enumerate(records):
        try:
            s3 = record["s3"]
            obj = s3["object"]
            parsed.append(
                S3ObjectRecord(
                    event_name=str(record.get("eventName", "")),
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    size=int(obj["size"]) if obj.get("size") is not None else None,
                    etag=obj.get("eTag"),
                    version_id=obj.get("versionId"),
                    sequencer=obj.get("sequencer"),
                    event_time=record.get("eventTime"),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvelopeError(f"S3 notification Records[{index}] is malformed: missing or bad {exc}") from exc
    return parsed
