"""Message handlers: the executor's two inputs, as typed async functions (idempotent per ``meta.event_id``)."""

from __future__ import annotations

import logging

from seqferry_executor.service.intake import Intake
from seqferry_shared.events.models import TransferRequested, TransferWindowOpened
from seqferry_shared.messaging.routing import InvalidEvent, MessageContext, Router

log = logging.getLogger(__name__)


def build_router(intake: Intake) -> Router:
    router = Router()

    @router.on(TransferWindowOpened)
    async def on_window(detail: TransferWindowOpened, ctx: MessageContext) -> None:
        outcome = await intake.submit_window(detail)
        log.info("window %s/%s (message %s): %s", detail.task, detail.tick, ctx.message_id, outcome)

    async def on_invalid_request(event: InvalidEvent, ctx: MessageContext) -> None:
        await intake.reject_invalid(
            event_id=event.event_id, source=event.source, detail=event.detail, reason=event.reason
        )

    @router.on(TransferRequested, on_invalid=on_invalid_request)
    async def on_request(detail: TransferRequested, ctx: MessageContext) -> None:
        outcome = await intake.submit_request(detail)
        log.info("request from %s (message %s): %s", ctx.source, ctx.message_id, outcome)

    return router
