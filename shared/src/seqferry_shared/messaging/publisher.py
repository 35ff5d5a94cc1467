"""Publish event details on the seqferry bus: trace context injected, PutEvents calls of at most 10 entries and
256 KiB (EventBridge's limits per request), partial failures retried."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any

from seqferry_shared.errors import RejectError, RetryLaterError
from seqferry_shared.events.models import EventDetail
from seqferry_shared.telemetry import trace_headers

log = logging.getLogger(__name__)

MAX_BATCH = 10
MAX_ENTRY_BYTES = 256 * 1024  # per entry, and per PutEvents request in all


class EntryTooLargeError(RejectError, ValueError):
    """One event is over EventBridge's 256 KiB entry limit: no retry can publish it."""


def entry_size(entry: dict[str, Any]) -> int:
    """PutEvents entry size as AWS counts it (UTF-8 bytes of the fields, 14 for a time stamp)."""
    size = 14 if "Time" in entry else 0
    for key in ("Source", "DetailType", "Detail", "EventBusName"):
        size += len(str(entry.get(key, "")).encode())
    size += sum(len(r.encode()) for r in entry.get("Resources", []))
    return size


def batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group entries into PutEvents calls of at most 10 entries and 256 KiB in total."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    total = 0
    for entry in entries:
        size = entry_size(entry)
        if current and (len(current) == MAX_BATCH or total + size > MAX_ENTRY_BYTES):
            groups.append(current)
            current, total = [], 0
        current.append(entry)
        total += size
    if current:
        groups.append(current)
    return groups


def put_events_entry(
    detail: EventDetail,
    *,
    bus: str,
    source: str | None = None,
    resources: Sequence[str] = (),
) -> dict[str, Any]:
    """The PutEvents entry for one detail on ``bus``, with the current trace context in ``meta``.

    Raises :class:`EntryTooLargeError` when the entry is over EventBridge's 256 KiB limit.
    """
    if detail.meta.traceparent is None:
        headers = trace_headers()
        if headers:
            detail = detail.model_copy(
                update={
                    "meta": detail.meta.model_copy(
                        update={
                            "traceparent": headers.get("traceparent"),
                            "tracestate": headers.get("tracestate"),
                        }
                    )
                }
            )
    body = detail.model_dump_json(exclude_none=True)
    if len(body.encode()) > MAX_ENTRY_BYTES:
        raise EntryTooLargeError(
            f"{detail.DETAIL_TYPE} detail is {len(body)} bytes, over EventBridge's 256 KiB entry limit"
        )
    entry: dict[str, Any] = {
        "EventBusName": bus,
        "Source": source or detail.SOURCE,
        "DetailType": detail.DETAIL_TYPE,
        "Detail": body,
        "Time": detail.meta.occurred_at,
    }
    if resources:
        entry["Resources"] = list(resources)
    if entry_size(entry) > MAX_ENTRY_BYTES:
        raise EntryTooLargeError(
            f"{detail.DETAIL_TYPE} entry is over EventBridge's 256 KiB limit ({entry_size(entry)} bytes)"
        )
    return entry


class PublishError(RetryLaterError):
    """Some entries could not be put on the bus after every retry; a message being handled is retried later."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        codes = sorted({str(f.get("ErrorCode")) for f in failures})
        super().__init__(f"{len(failures)} event(s) not published: {', '.join(codes)}")
        self.failures = failures


class EventPublisher:
    def __init__(
        self,
        events_client: Any,
        bus_name: str,
        *,
        max_attempts: int = 6,
        base_delay_s: float = 0.2,
    ) -> None:
        self._events = events_client
        self._bus = bus_name
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s

    @property
    def bus_name(self) -> str:
        return self._bus

    def entry(
        self,
        detail: EventDetail,
        *,
        source: str | None = None,
        resources: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The PutEvents entry for one detail, with the current trace context in ``meta``."""
        return put_events_entry(detail, bus=self._bus, source=source, resources=resources)

    async def publish(
        self,
        *details: EventDetail,
        source: str | None = None,
        resources: Sequence[str] = (),
    ) -> None:
        """Put ``details`` on the bus, in as few PutEvents calls as EventBridge's limits allow."""
        entries = [self.entry(d, source=source, resources=resources) for d in details]
        for batch in batches(entries):
            await self._put_batch(batch)

    async def _put_batch(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        failures: list[dict[str, Any]] = []
        for attempt in range(1, self._max_attempts + 1):
            response = await self._events.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            results = response.get("Entries", [])
            retry = [e for e, r in zip(pending, results, strict=False) if r.get("ErrorCode")]
            failures = [r for r in results if r.get("ErrorCode")]
            log.warning(
                "put_events: %d of %d entries failed (attempt %d/%d): %s",
                len(retry),
                len(pending),
                attempt,
                self._max_attempts,
                ", ".join(sorted({str(f.get("ErrorCode")) for f in failures})),
            )
            pending = retry
            delay = min(5.0, self._base_delay_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
        raise PublishError(failures)
