"""One SQS message to its handler: parse the envelope, route it, validate the payload, guard it, trace it.

The receive loop (:mod:`.consumer`) calls :meth:`Dispatcher.dispatch` once per message and turns what it raises
into the message's outcome (:mod:`seqferry_shared.errors`); returning means the message is done with.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from pydantic import ValidationError

from seqferry_shared.errors import IgnoreError
from seqferry_shared.idempotency import IdempotencyStore
from seqferry_shared.messaging.envelopes import EventBridgeEvent, S3ObjectRecord, S3TestEvent, parse_body
from seqferry_shared.messaging.routing import (
    AwsRoute,
    DetailRoute,
    Handler,
    InvalidEvent,
    InvalidMessageError,
    MessageContext,
    Router,
    describe_validation_error,
)
from seqferry_shared.telemetry import attach, detach, extract

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        router: Router,
        *,
        name: str,
        queue_name: str,
        tracer: Tracer,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self._router = router
        self._name = name
        self._queue_name = queue_name
        self._tracer = tracer
        self._idempotency = idempotency

    async def dispatch(self, message: dict[str, Any], message_id: str, receive_count: int) -> None:
        envelope = parse_body(message.get("Body", ""))
        if isinstance(envelope, S3TestEvent):
            raise IgnoreError(f"s3:TestEvent for bucket {envelope.bucket}")
        if isinstance(envelope, list):
            await self._records(envelope, MessageContext(message_id, receive_count, self._queue_name))
            return
        ctx = MessageContext(message_id, receive_count, self._queue_name, source=envelope.source)
        route = self._router.route(envelope)
        if isinstance(route, AwsRoute):
            model = route.parse(envelope)
            with self._tracer.start_as_current_span(
                f"{self._queue_name} process {envelope.detail_type}", kind=SpanKind.CONSUMER
            ):
                await route.handler(model, ctx)
            return
        await self._detail(route, envelope, message, ctx)

    async def _records(self, records: list[S3ObjectRecord], ctx: MessageContext) -> None:
        handler = self._router.s3_handler()
        for record in records:
            with self._tracer.start_as_current_span(
                f"{self._queue_name} process s3 {record.event_name}", kind=SpanKind.CONSUMER
            ):
                await handler(record, ctx)

    async def _detail(
        self, route: DetailRoute, event: EventBridgeEvent, message: dict[str, Any], ctx: MessageContext
    ) -> None:
        meta = event.detail.get("meta") if isinstance(event.detail.get("meta"), dict) else {}
        carrier = {
            "traceparent": (meta or {}).get("traceparent")
            or message.get("MessageAttributes", {}).get("traceparent", {}).get("StringValue"),
            "tracestate": (meta or {}).get("tracestate"),
        }
        token = attach(extract(carrier))
        try:
            with self._tracer.start_as_current_span(
                f"{self._queue_name} process {event.detail_type}",
                kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "aws_sqs", "messaging.message.id": ctx.message_id},
            ) as span:
                try:
                    detail = route.model.model_validate(event.detail)
                except ValidationError as exc:
                    span.set_status(Status(StatusCode.ERROR, "invalid detail"))
                    reason = f"invalid {event.detail_type!r} detail: {describe_validation_error(exc)}"
                    if route.on_invalid is None:
                        raise InvalidMessageError(reason) from exc
                    log.warning("consumer %s: event %s rejected: %s", self._name, event.id, reason)
                    invalid = InvalidEvent(event.id, event.source, event.detail_type, event.detail, reason)
                    await self._guarded(f"{self._name}#invalid#{event.id}", route.on_invalid, invalid, ctx)
                    return
                span.set_attribute("seqferry.event_id", str(detail.meta.event_id))
                if route.idempotent:
                    await self._guarded(f"{self._name}#{detail.meta.event_id}", route.handler, detail, ctx)
                else:
                    await route.handler(detail, ctx)
        finally:
            detach(token)

    async def _guarded(self, key: str, handler: Handler[Any], payload: Any, ctx: MessageContext) -> None:
        """Run ``handler`` once per ``key`` (when an idempotency store is given)."""
        if self._idempotency is None:
            await handler(payload, ctx)
            return
        async with self._idempotency.guard(key) as claim:
            if claim.done:
                log.info("consumer %s: duplicate event %s skipped", self._name, key.rsplit("#", 1)[-1])
                return
            await handler(payload, ctx)
