"""Sequencing Run Started/Completed on the bus for the runs the simulator writes."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from seqferry_shared.events.models import Meta, SequencingRunCompleted, SequencingRunStarted
from seqferry_shared.messaging.publisher import EventPublisher, PublishError
from seqferry_simulator.domain.records import RunRecord

log = logging.getLogger(__name__)


class RunEvents:
    """Publishes ``Sequencing Run Started``/``Completed``; a bus outage is logged, the run goes on."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def started(self, record: RunRecord) -> None:
        await self._publish(
            SequencingRunStarted(
                meta=Meta(correlation_id=record.run_id),
                run_id=record.run_id,
                instrument=record.instrument or "",
                path=record.nas_path,
                cycles=record.total_cycles,
            )
        )

    async def completed(self, record: RunRecord) -> None:
        await self._publish(
            SequencingRunCompleted(
                meta=Meta(correlation_id=record.run_id),
                run_id=record.run_id,
                instrument=record.instrument or "",
                path=record.nas_path,
                cycles=record.total_cycles,
                cycles_completed=record.cycles_done,
                completion_status=record.completion_status or "CompletedAsPlanned",
                files=record.files,
                bytes=record.bytes,
            )
        )

    async def _publish(self, detail: SequencingRunStarted | SequencingRunCompleted) -> None:
        try:
            await self._publisher.publish(detail)
        except (PublishError, ClientError, BotoCoreError) as exc:
            log.error("could not publish %s for %s: %s", detail.DETAIL_TYPE, detail.run_id, exc)
