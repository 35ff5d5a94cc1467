"""The SQS receive loop: long poll, bounded concurrency, heartbeat, outcomes, drain on shutdown.

Each message goes to :class:`~.dispatch.Dispatcher` (envelope → route → typed handler); what that raises decides
the message's outcome (the vocabulary of :mod:`seqferry_shared.errors`):

- it returns → the message is deleted;
- :class:`IgnoreError` → deleted, the reason logged;
- :class:`RejectError` (an invalid body or detail, an untrusted source, no route, or a handler's own) → made
  visible again at once; after the queue's ``maxReceiveCount`` SQS moves it to the DLQ; the log names the reason;
- :class:`IdempotencyInProgressError` → another worker holds the event: back after the retry delay;
- :class:`RetryLaterError` or any other exception → back after a back-off (the retry delay doubled per receive);
- :meth:`SqsConsumer.stop` (SIGTERM) → no new receives; in-flight handlers finish within the grace period, or
  their messages are returned to the queue at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Counter, Histogram

from seqferry_shared.errors import IgnoreError, RejectError, RetryLaterError
from seqferry_shared.idempotency import IdempotencyInProgressError, IdempotencyStore
from seqferry_shared.messaging.dispatch import Dispatcher
from seqferry_shared.messaging.routing import Router
from seqferry_shared.periodic import wait_unless_stopping
from seqferry_shared.telemetry import Telemetry

log = logging.getLogger(__name__)


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
        self.name = name
        self._dispatcher = Dispatcher(
            router,
            name=name,
            queue_name=queue_name,
            tracer=telemetry.tracer if telemetry else trace.get_tracer("seqferry.consumer"),
            idempotency=idempotency,
        )
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
        await wait_unless_stopping(self._stopping, seconds)

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
            try:
                await self._dispatcher.dispatch(message, message_id, receive_count)
            except IgnoreError as exc:
                outcome = "ignored"
                log.info("consumer %s: message %s ignored: %s", self.name, message_id, exc)
            await self._sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
            self.processed += 1
        except asyncio.CancelledError:
            outcome = "returned"
            await asyncio.shield(self._set_visibility(url, receipt, 0))
            raise
        except RejectError as exc:
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
        except Exception as exc:
            outcome = "error"
            self.failed += 1
            delay = min(self._max_retry_delay_s, self._retry_delay_s * 2 ** (receive_count - 1))
            if isinstance(exc, RetryLaterError):  # foreseen: its message says why, no traceback needed
                log.warning("consumer %s: message %s retried in %d s: %s", self.name, message_id, delay, exc)
            else:
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
