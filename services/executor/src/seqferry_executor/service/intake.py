"""The intake: windows and requests in — validated, recorded when refused, queued per task, then driven.

A refused window or request is recorded (``GET /requests/{id}``) and emitted as an ERROR state change naming its
reasons; accepted work is appended to its task's queue in the state table (coalesced or deduplicated there) and
handed to the :class:`~seqferry_executor.service.driver.Driver` at once, under the task's lock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Sequence
from typing import Any, Literal

from opentelemetry.metrics import Meter

from seqferry_executor.domain.queue import WorkKind, enqueue
from seqferry_executor.service.driver import MAX_CONFLICT_RETRIES, Clock, Driver, utc_now
from seqferry_executor.store import StateStore, VersionConflictError
from seqferry_shared.events.models import (
    ErrorInfo,
    Meta,
    TransferExecutionStateChanged,
    TransferRequested,
    TransferState,
    TransferWindowOpened,
    Trigger,
)
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.patterns import escape
from seqferry_shared.telemetry import trace_headers
from seqferry_shared.validation import Rejected, validate_transfer

log = logging.getLogger(__name__)

REJECTION_NAMESPACE = uuid.UUID("c3a0f7d4-2e61-4b8f-9d35-7a4e1b6c0f28")
REJECTED_CODE = "InvalidTransferRequest"

Submitted = Literal["queued", "coalesced", "duplicate", "rejected"]


class Intake:
    def __init__(
        self,
        *,
        driver: Driver,
        store: StateStore,
        publisher: EventPublisher,
        roots: Sequence[str],
        default_task: str,
        known_tasks: Collection[str] | None,
        clock: Clock = utc_now,
        meter: Meter | None = None,
    ) -> None:
        self._driver = driver
        self._store = store
        self._publisher = publisher
        self._roots = list(roots)
        self._default_task = default_task
        self._known_tasks = frozenset(known_tasks) if known_tasks is not None else None
        self._clock = clock
        self._submissions = (
            meter.create_counter(
                "seqferry_transfer_submissions", description="Windows and requests received, by kind and outcome"
            )
            if meter is not None
            else None
        )

    async def submit_window(self, detail: TransferWindowOpened) -> Submitted:
        return self._count(WorkKind.WINDOW, await self._submit_window(detail))

    async def submit_request(self, detail: TransferRequested) -> Submitted:
        return self._count(WorkKind.REQUEST, await self._submit_request(detail))

    def _count(self, kind: WorkKind, outcome: Submitted) -> Submitted:
        if self._submissions is not None:
            self._submissions.add(1, {"kind": kind.value, "outcome": outcome})
        return outcome

    async def _submit_window(self, detail: TransferWindowOpened) -> Submitted:
        ref = str(detail.tick)
        correlation_id = detail.meta.correlation_id or f"window#{detail.task}#{detail.tick}"
        verdict = validate_transfer(
            task=detail.task,
            includes=detail.includes,
            roots=self._roots,
            default_task=self._default_task,
            known_tasks=self._known_tasks,
        )
        if isinstance(verdict, Rejected):
            await self._store.claim_request(
                f"window#{verdict.task}#{ref}",
                event_id=str(detail.meta.event_id),
                status="rejected",
                task=verdict.task,
                reasons=verdict.reasons,
                includes=len(detail.includes),
                correlation_id=correlation_id,
                requested_by="scheduler",
                now=self._clock(),
                kind=WorkKind.WINDOW,
            )
            await self._publish_rejection(
                kind=WorkKind.WINDOW,
                ref=ref,
                verdict=verdict,
                detail_event_id=detail.meta.event_id,
                includes=detail.includes,
                correlation_id=correlation_id,
            )
            return "rejected"
        return await self._enqueue(verdict.task, WorkKind.WINDOW, ref, verdict.includes, correlation_id)

    async def _submit_request(self, detail: TransferRequested) -> Submitted:
        correlation_id = detail.meta.correlation_id or detail.request_id
        verdict = validate_transfer(
            task=detail.task,
            includes=detail.includes,
            roots=self._roots,
            default_task=self._default_task,
            known_tasks=self._known_tasks,
        )
        rejected = isinstance(verdict, Rejected)
        claim = await self._store.claim_request(
            detail.request_id,
            event_id=str(detail.meta.event_id),
            status="rejected" if rejected else "queued",
            task=verdict.task,
            reasons=verdict.reasons if isinstance(verdict, Rejected) else (),
            includes=len(detail.includes),
            correlation_id=correlation_id,
            requested_by=detail.requested_by,
            now=self._clock(),
        )
        if claim == "duplicate":
            log.warning("request %s already received with another event; ignored", escape(detail.request_id, 128))
            return "duplicate"
        if isinstance(verdict, Rejected):
            log.warning("request %s rejected: %s", escape(detail.request_id, 128), verdict.message)
            await self._publish_rejection(
                kind=WorkKind.REQUEST,
                ref=detail.request_id,
                verdict=verdict,
                detail_event_id=detail.meta.event_id,
                includes=detail.includes,
                correlation_id=correlation_id,
            )
            return "rejected"
        return await self._enqueue(verdict.task, WorkKind.REQUEST, detail.request_id, verdict.includes, correlation_id)

    async def reject_invalid(self, *, event_id: str, source: str, detail: dict[str, Any], reason: str) -> None:
        """A ``Transfer Requested`` that does not match its schema: record it and emit it as ERROR."""
        raw_id = detail.get("request_id")
        ref = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= 128 else f"event-{event_id}"
        raw_includes = detail.get("includes")
        includes = [p for p in raw_includes if isinstance(p, str)] if isinstance(raw_includes, list) else []
        raw_task = detail.get("task")
        known = self._known_tasks
        task = raw_task if isinstance(raw_task, str) and (known is None or raw_task in known) else self._default_task
        verdict = Rejected(task=task, reasons=(reason,))
        claim = await self._store.claim_request(
            ref,
            event_id=event_id,
            status="rejected",
            task=task,
            reasons=verdict.reasons,
            includes=len(includes),
            correlation_id=ref,
            requested_by=f"{source} (unvalidated)",
            now=self._clock(),
        )
        if claim == "duplicate":
            log.warning("invalid request %s already recorded with another event", escape(ref, 128))
            return
        await self._publish_rejection(
            kind=WorkKind.REQUEST,
            ref=ref,
            verdict=verdict,
            detail_event_id=uuid.uuid5(REJECTION_NAMESPACE, event_id),
            includes=includes,
            correlation_id=ref,
        )

    async def _publish_rejection(
        self,
        *,
        kind: WorkKind,
        ref: str,
        verdict: Rejected,
        detail_event_id: uuid.UUID,
        includes: Sequence[str],
        correlation_id: str,
    ) -> None:
        event = TransferExecutionStateChanged(
            meta=Meta(event_id=uuid.uuid5(REJECTION_NAMESPACE, str(detail_event_id)), correlation_id=correlation_id),
            execution_id=f"rejected-{kind.value}-{ref}",
            backend=self._driver.backend_name,
            task=verdict.task,
            state=TransferState.ERROR,
            trigger=Trigger(kind=kind.value, id=ref),
            includes=[escape(p) for p in includes[:100]],
            error=ErrorInfo(code=REJECTED_CODE, message=verdict.message),
        )
        await self._publisher.publish(event)

    async def _enqueue(
        self, task: str, kind: WorkKind, ref: str, includes: tuple[str, ...], correlation_id: str
    ) -> Submitted:
        async with self._driver.lock(task):
            for _ in range(MAX_CONFLICT_RETRIES):
                queue = await self._store.load_queue(task)
                result = enqueue(
                    queue,
                    kind=kind,
                    ref=ref,
                    includes=includes,
                    correlation_id=correlation_id,
                    now=self._clock(),
                    trace=tuple(sorted(trace_headers().items())),
                )
                if result.outcome == "duplicate":
                    return "duplicate"
                try:
                    await self._store.save_queue(queue, result.queue)
                    break
                except VersionConflictError:
                    continue
            else:
                raise VersionConflictError(f"task {task}: could not queue {kind.value} {ref}")
            log.info("task %s: %s %s %s", task, kind.value, escape(ref, 128), result.outcome)
            # The work is persisted; if driving fails now, the polling loop drives it later.
            await self._driver.drive_locked(task)
        return result.outcome
