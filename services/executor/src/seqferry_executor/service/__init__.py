"""The executor's application layer: the intake takes windows and requests in, the driver takes them to their end.

:class:`Orchestrator` builds the two on the same store, publisher and backend. The message handlers call the
intake; the poller (a periodic round of the runtime) and the HTTP views use the driver.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from opentelemetry.metrics import Meter

from seqferry_executor.backends.base import TransferBackend
from seqferry_executor.domain.executions import ExecutionRecord
from seqferry_executor.domain.queue import TaskQueue
from seqferry_executor.service.driver import Clock, Driver, utc_now
from seqferry_executor.service.intake import Intake, Submitted
from seqferry_executor.store import StateStore
from seqferry_shared.events.models import TransferRequested, TransferWindowOpened
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.patterns import FILTER_VALUE_LIMIT

__all__ = ["Clock", "Driver", "Intake", "Orchestrator", "Submitted", "utc_now"]


class Orchestrator:
    def __init__(
        self,
        *,
        backend: TransferBackend,
        store: StateStore,
        publisher: EventPublisher,
        roots: Sequence[str],
        default_task: str,
        known_tasks: Collection[str] | None,
        owner: str,
        start_lease: timedelta = timedelta(minutes=5),
        retry_base_s: float = 2.0,
        retry_max_s: float = 300.0,
        filter_limit: int = FILTER_VALUE_LIMIT,
        clock: Clock = utc_now,
        meter: Meter | None = None,
    ) -> None:
        self.driver = Driver(
            backend=backend,
            store=store,
            publisher=publisher,
            owner=owner,
            start_lease=start_lease,
            retry_base_s=retry_base_s,
            retry_max_s=retry_max_s,
            filter_limit=filter_limit,
            clock=clock,
            meter=meter,
        )
        self.intake = Intake(
            driver=self.driver,
            store=store,
            publisher=publisher,
            roots=roots,
            default_task=default_task,
            known_tasks=known_tasks,
            clock=clock,
            meter=meter,
        )

    # The intake's and the driver's entry points, for callers that hold the whole layer (tests, tools).
    async def submit_window(self, detail: TransferWindowOpened) -> Submitted:
        return await self.intake.submit_window(detail)

    async def submit_request(self, detail: TransferRequested) -> Submitted:
        return await self.intake.submit_request(detail)

    async def reject_invalid(self, *, event_id: str, source: str, detail: dict[str, Any], reason: str) -> None:
        await self.intake.reject_invalid(event_id=event_id, source=source, detail=detail, reason=reason)

    async def poll_once(self) -> None:
        await self.driver.poll_once()

    async def queues(self) -> list[TaskQueue]:
        return await self.driver.queues()

    async def in_flight(self) -> list[ExecutionRecord]:
        return await self.driver.in_flight()

    def backoff_of(self, task: str) -> str | None:
        return self.driver.backoff_of(task)
