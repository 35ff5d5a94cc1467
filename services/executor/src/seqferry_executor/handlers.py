"""Message handlers: the executor's two inputs, as typed async functions (idempotent per ``meta.event_id``)."""

from __future__ import annotations

import logging

from seqferry_executor.orchestrator import Orchestrator
from seqferry_shared.consumer import MessageContext, Router
from seqferry_shared.envelopes import EventBridgeEvent
from seqferry_shared.events.models import TransferRequested, TransferWindowOpened

log = logging.getLogger(__name__)


def build_router(orchestrator: Orchestrator) -> Router:
    router = Router()

    @router.on(TransferWindowOpened)
    async def on_window(detail: TransferWindowOpened, ctx: MessageContext) -> None:
        outcome = await orchestrator.submit_window(detail)
        log.info("window %s/%s (message %s): %s", detail.task, detail.tick, ctx.message_id, outcome)

    async def on_invalid_request(event: EventBridgeEvent, reason: str, ctx: MessageContext) -> None:
        await orchestrator.reject_invalid(event_id=event.id, source=event.source, detail=event.detail, reason=reason)

    @router.on(TransferRequested, on_invalid=on_invalid_request)
    async def on_request(detail: TransferRequested, ctx: MessageContext) -> None:
        outcome = await orchestrator.submit_request(detail)
        source = ctx.event.source if ctx.event else "?"
        log.info("request from %s (message %s): %s", source, ctx.message_id, outcome)

    return router
