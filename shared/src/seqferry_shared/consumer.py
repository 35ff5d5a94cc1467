"""SQS consumer runtime: long poll, batches, heartbeat, delete on success, poison left to the DLQ redrive.

Handlers are typed async functions registered on a :class:`Router`; they receive domain models and a
:class:`MessageContext`, never receipt handles. Outcomes:

- handler returns → the message is deleted;
- handler raises :class:`PermanentError` (or the body/detail is invalid) → the message is made visible again at
  once and, after the queue's ``maxReceiveCount``, SQS moves it to the DLQ; the log names the invalid field;
- any other exception → the message returns after a backoff (visibility timeout) and is retried;
- SIGTERM (:meth:`SqsConsumer.stop`) → no new receives; in-flight handlers finish within the grace period, or
  their messages are returned to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from seqferry_shared.envelopes import (
    EnvelopeError,
    EventBridgeEvent,
    S3ObjectRecord,
    S3TestEvent,
    parse_body,
)
from seqferry_shared.events.models import EventDetail
from seqferry_shared.idempotency import IdempotencyInProgressError, IdempotencyStore
from seqferry_shared.telemetry import Telemetry, attach, detach, extract

log = logging.getLogger(__name__)

M = TypeVar("M", bound=EventDetail)


class PermanentError(Exception):
    """The message can never be processed; it is left for the queue's dead-letter redrive."""


@dataclass(frozen=True, slots=True)
class MessageContext:
    message_id: str
    receive_count: int
    queue_name: str
    event: EventBridgeEvent | None = None
    record: S3ObjectRecord | None = None


ModelHandler = Callable[[Any, MessageContext], Awaitable[None]]
InvalidHandler = Callable[[EventBridgeEvent, str, MessageContext], Awaitable[None]]
"""Called with the event and a description naming the invalid fields; returning means it was recorded."""
AwsHandler = Callable[[EventBridgeEvent, MessageContext], Awaitable[None]]
S3Handler = Callable[[S3ObjectRecord, MessageContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _ModelRoute:
    model: type[EventDetail]
    handler: ModelHandler
    idempotent: bool
    on_invalid: InvalidHandler | None = None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


class Router:
    """Maps envelopes to handlers: our events by detail-type (from a source the model trusts), AWS events by
    source+detail-type, S3 records."""

    def __init__(self) -> None:
        self._models: dict[str, _ModelRoute] = {}
        self._aws: dict[tuple[str, str], AwsHandler] = {}
        self._s3: S3Handler | None = None

    def on(
        self, model: type[M], *, idempotent: bool = True, on_invalid: InvalidHandler | None = None
    ) -> Callable[[ModelHandler], ModelHandler]:
        """Register a handler for ``model``'s detail-type.

        A detail that fails validation goes to the DLQ, unless ``on_invalid`` is given: then that hook records the
        rejection (for example as an ERROR event) and the message is deleted once it returns.
        """

        def register(handler: ModelHandler) -> ModelHandler:
            self._models[model.DETAIL_TYPE] = _ModelRoute(model, handler, idempotent, on_invalid)
            return handler

        return register

    def add(
        self,
        model: type[M],
        handler: Callable[[M, MessageContext], Awaitable[None]],
        *,
        idempotent: bool = True,
    ) -> None:
        self._models[model.DETAIL_TYPE] = _ModelRoute(model, handler, idempotent)

    def on_aws(self, source: str, detail_type: str) -> Callable[[AwsHandler], AwsHandler]:
        def register(handler: AwsHandler) -> AwsHandler:
            self._aws[(source, detail_type)] = handler
            return handler

        return register

    def on_s3(self) -> Callable[[S3Handler], S3Handler]:
        def register(handler: S3Handler) -> S3Handler:
            self._s3 = handler
            return handler

        return register

    def model_route(self, detail_type: str) -> _ModelRoute | None:
        return self._models.get(detail_type)

    def aws_route(self, source: str, detail_type: str) -> AwsHandler | None:
        return self._aws.get((source, detail_type))

    @property
    def s3_handler(self) -> S3Handler | None:
        return self._s3


class SqsConsumer:
    def __init__(
        self,
        *,
        sqs: Any,
        queue_name: str,
        router: Router,
        name: str,
        idempotency: IdempotencyStore | None = None,
        telemetry: Telemetry | None = None,
        wait_time_s: int = 20,
        visibility_timeout_s: int = 60,
        max_messages: int = 10,
        concurrency: int = 10,
        retry_delay_s: int = 5,
        max_retry_delay_s: int = 300,
        shutdown_grace_s: float = 25.0,
    ) -> None:
        self._sqs = sqs
        self.queue_name = queue_name
        self._router = router
        self.name = name
        self._idempotency = idempotency
        self._tracer = telemetry.tracer if telemetry else trace.get_tracer("seqferry.consumer")
        self._wait_time_s = wait_time_s
        self._visibility_timeout_s = visibility_timeout_s
        self._max_messages = min(10, max_messages)
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_delay_s = retry_delay_s
        self._max_retry_delay_s = max_retry_delay_s
        self._shutdown_grace_s = shutdown_grace_s
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._queue_url: str | None = None
        self._receive: asyncio.Task[Any] | None = None
        self.processed = 0
        self.failed = 0
        self._outcomes: Counter | None = None
        self._duration: Histogram | None = None
        if telemetry is not None:
            meter = telemetry.meter
            self._outcomes = meter.create_counter(
                "seqferry_messages",
                description="SQS messages handled, by queue and outcome",
            )
            self._duration = meter.create_histogram(
                "seqferry_message_seconds",
                unit="s",
                description="Handler duration per message",
            )

    async def queue_url(self) -> str:
        if self._queue_url is None:
            response = await self._sqs.get_queue_url(QueueName=self.queue_name)
            self._queue_url = str(response["QueueUrl"])
        return self._queue_url

    async def ping(self) -> None:
        """Readiness: the queue answers."""
        await self._sqs.get_queue_attributes(QueueUrl=await self.queue_url(), AttributeNames=["QueueArn"])

    def stop(self) -> None:
        self._stopping.set()
        if self._receive is not None and not self._receive.done():
            # Messages in a cancelled long poll's response stay invisible until their timeout, then come back.
            self._receive.cancel()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Receive and dispatch until :meth:`stop`; then drain in-flight work (see :meth:`_drain`)."""
        url = await self.queue_url()
        log.info("consumer %s: polling %s", self.name, self.queue_name)
        abandon = False
        try:
            while not self._stopping.is_set():
                await self._slots.acquire()
                self._slots.release()
                free = self._free_slots()
                self._receive = asyncio.create_task(
                    self._sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=max(1, min(self._max_messages, free)),
                        WaitTimeSeconds=self._wait_time_s,
                        VisibilityTimeout=self._visibility_timeout_s,
                        MessageSystemAttributeNames=[
                            "ApproximateReceiveCount",
                            "SentTimestamp",
                        ],
                        MessageAttributeNames=["All"],
                    )
                )
                try:
                    response = await self._receive
                except asyncio.CancelledError:
                    if self._stopping.is_set():
                        break
                    raise
                except Exception:
                    log.exception("consumer %s: receive failed; retrying", self.name)
                    await self._sleep_unless_stopping(2.0)
                    continue
                finally:
                    self._receive = None
                for message in response.get("Messages", []):
                    await self._slots.acquire()
                    task = asyncio.create_task(self._process(url, message))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
        except asyncio.CancelledError:
            abandon = True  # cancelled by the owner: no grace left, return what is in flight
            raise
        finally:
            await self._drain(abandon=abandon)

    def _free_slots(self) -> int:
        return max(1, self._concurrency - len(self._inflight))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def _drain(self, *, abandon: bool = False) -> None:
        """Let in-flight handlers finish within the grace period; cancel the rest, returning their messages.

        A cancelled handler's message is made visible again at once (not after its visibility timeout), so
        another worker takes it over immediately. Cancelling this drain (the owner ran out of patience) returns
        everything still in flight.
        """
        if not self._inflight:
            return
        inflight = set(self._inflight)
        log.info("consumer %s: finishing %d in-flight message(s)", self.name, len(inflight))
        pending = inflight
        if not abandon:
            try:
                _, pending = await asyncio.wait(inflight, timeout=self._shutdown_grace_s)
            except asyncio.CancelledError:
                await self._return(set(self._inflight))
                raise
        if pending:
            await self._return(pending)

    async def _return(self, tasks: set[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        log.warning("consumer %s: %d message(s) returned to the queue unfinished", self.name, len(tasks))

    async def _process(self, url: str, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        message_id = message.get("MessageId", "?")
        receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        heartbeat = asyncio.create_task(self._heartbeat(url, receipt))
        started = time.monotonic()
        outcome = "ok"
        try:
            await self._dispatch(message, message_id, receive_count)
            await self._sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
            self.processed += 1
        except asyncio.CancelledError:
            outcome = "returned"
            await asyncio.shield(self._set_visibility(url, receipt, 0))
            raise
        except (PermanentError, EnvelopeError) as exc:
            outcome = "rejected"
            self.failed += 1
            log.error(
                "consumer %s: message %s rejected (receive %d, goes to the DLQ after the queue's maxReceiveCount): %s",
                self.name,
                message_id,
                receive_count,
                exc,
            )
            await self._set_visibility(url, receipt, 0)
        except IdempotencyInProgressError as exc:
            outcome = "busy"
            log.info("consumer %s: message %s deferred: %s", self.name, message_id, exc)
            await self._set_visibility(url, receipt, self._retry_delay_s)
        except Exception:
            outcome = "error"
            self.failed += 1
            delay = min(self._max_retry_delay_s, self._retry_delay_s * 2 ** (receive_count - 1))
            log.exception(
                "consumer %s: message %s failed (receive %d); retry in %d s",
                self.name,
                message_id,
                receive_count,
                delay,
            )
            await self._set_visibility(url, receipt, delay)
        finally:
            heartbeat.cancel()
            if self._outcomes is not None and self._duration is not None:
                attrs = {"queue": self.queue_name, "outcome": outcome}
                self._outcomes.add(1, attrs)
                self._duration.record(time.monotonic() - started, attrs)

    async def _set_visibility(self, url: str, receipt: str, seconds: int) -> None:
        try:
            await self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=seconds)
        except Exception:  # the message still returns when its current timeout lapses
            log.warning("consumer %s: could not change visibility", self.name, exc_info=True)

    async def _heartbeat(self, url: str, receipt: str) -> None:
        interval = max(1.0, self._visibility_timeout_s / 2)
        while True:
            await asyncio.sleep(interval)
            await self._set_visibility(url, receipt, self._visibility_timeout_s)

    async def _dispatch(self, message: dict[str, Any], message_id: str, receive_count: int) -> None:
        envelope = parse_body(message.get("Body", ""))
        if isinstance(envelope, S3TestEvent):
            log.info(
                "consumer %s: ignoring s3:TestEvent for bucket %s",
                self.name,
                envelope.bucket,
            )
            return
        if isinstance(envelope, list):
            handler = self._router.s3_handler
            if handler is None:
                raise PermanentError("S3 notification received but no S3 handler is registered")
            for record in envelope:
                ctx = MessageContext(message_id, receive_count, self.queue_name, record=record)
                with self._tracer.start_as_current_span(
                    f"{self.queue_name} process s3 {record.event_name}",
                    kind=SpanKind.CONSUMER,
                ):
                    await handler(record, ctx)
            return
        await self._dispatch_event(envelope, message, message_id, receive_count)

    async def _invalid(self, hook: InvalidHandler, event: EventBridgeEvent, reason: str, ctx: MessageContext) -> None:
        # The detail has no usable meta.event_id; EventBridge's own event id is stable across redeliveries.
        if self._idempotency is None:
            await hook(event, reason, ctx)
            return
        async with self._idempotency.guard(f"{self.name}#invalid#{event.id}") as claim:
            if not claim.done:
                await hook(event, reason, ctx)

    async def _dispatch_event(
        self,
        event: EventBridgeEvent,
        message: dict[str, Any],
        message_id: str,
        receive_count: int,
    ) -> None:
        ctx = MessageContext(message_id, receive_count, self.queue_name, event=event)
        route = self._router.model_route(event.detail_type)
        if route is not None and not route.model.trusts(event.source):
            # The rules only deliver trusted sources; whatever else reaches the queue is kept in the DLQ, not acted on.
            raise PermanentError(f"{event.detail_type!r} from source {event.source!r} is not trusted; not handled")
        if route is None:
            aws_handler = self._router.aws_route(event.source, event.detail_type)
            if aws_handler is None:
                raise PermanentError(f"no handler for detail-type {event.detail_type!r} from {event.source!r}")
            with self._tracer.start_as_current_span(
                f"{self.queue_name} process {event.detail_type}", kind=SpanKind.CONSUMER
            ):
                await aws_handler(event, ctx)
            return
        meta = event.detail.get("meta") if isinstance(event.detail.get("meta"), dict) else {}
        carrier = {
            "traceparent": (meta or {}).get("traceparent")
            or message.get("MessageAttributes", {}).get("traceparent", {}).get("StringValue"),
            "tracestate": (meta or {}).get("tracestate"),
        }
        token = attach(extract(carrier))
        try:
            with self._tracer.start_as_current_span(
                f"{self.queue_name} process {event.detail_type}",
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "aws_sqs",
                    "messaging.message.id": message_id,
                },
            ) as span:
                try:
                    detail = route.model.model_validate(event.detail)
                except ValidationError as exc:
                    span.set_status(Status(StatusCode.ERROR, "invalid detail"))
                    reason = f"invalid {event.detail_type!r} detail: {describe_validation_error(exc)}"
                    if route.on_invalid is None:
                        raise PermanentError(reason) from exc
                    log.warning("consumer %s: event %s rejected: %s", self.name, event.id, reason)
                    await self._invalid(route.on_invalid, event, reason, ctx)
                    return
                span.set_attribute("seqferry.event_id", str(detail.meta.event_id))
                if route.idempotent and self._idempotency is not None:
                    async with self._idempotency.guard(f"{self.name}#{detail.meta.event_id}") as claim:
                        if claim.done:
                            log.info(
                                "consumer %s: duplicate event %s skipped",
                                self.name,
                                detail.meta.event_id,
                            )
                            return
                        await route.handler(detail, ctx)
                else:
                    await route.handler(detail, ctx)
        finally:
            detach(token)
