"""Typed handlers for the notifier queue: the executor's state changes and DataSync's own events."""

from __future__ import annotations

from seqferry_notifier.service import NotifierService
from seqferry_shared.events.aws import DataSyncStateChange
from seqferry_shared.events.models import TransferExecutionStateChanged
from seqferry_shared.messaging.routing import MessageContext, Router


def build_router(service: NotifierService) -> Router:
    router = Router()

    @router.on(TransferExecutionStateChanged)
    async def execution_state_changed(detail: TransferExecutionStateChanged, ctx: MessageContext) -> None:
        await service.on_execution_event(detail)

    @router.on_aws(DataSyncStateChange)
    async def datasync_state_change(event: DataSyncStateChange, ctx: MessageContext) -> None:
        await service.on_datasync_event(event)

    return router
