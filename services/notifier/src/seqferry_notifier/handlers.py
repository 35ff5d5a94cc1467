"""Typed handlers for the notifier queue: the executor's state changes and DataSync's own events."""

from __future__ import annotations

from seqferry_notifier.domain.datasync import NotADataSyncExecutionError
from seqferry_notifier.service import NotifierService
from seqferry_shared.consumer import MessageContext, PermanentError, Router
from seqferry_shared.envelopes import EventBridgeEvent
from seqferry_shared.events.models import TransferExecutionStateChanged
from seqferry_shared.resources import DATASYNC_DETAIL_TYPE, DATASYNC_SOURCE


def build_router(service: NotifierService) -> Router:
    router = Router()

    @router.on(TransferExecutionStateChanged)
    async def execution_state_changed(detail: TransferExecutionStateChanged, ctx: MessageContext) -> None:
        await service.on_execution_event(detail)

    @router.on_aws(DATASYNC_SOURCE, DATASYNC_DETAIL_TYPE)
    async def datasync_state_change(event: EventBridgeEvent, ctx: MessageContext) -> None:
        try:
            await service.on_datasync_event(event.resources, event.detail, event.occurred)
        except NotADataSyncExecutionError as exc:
            raise PermanentError(str(exc)) from exc

    return router
