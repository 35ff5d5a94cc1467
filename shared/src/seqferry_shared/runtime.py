"""What every service process holds while it runs: clients, telemetry, publisher, consumers, background loops.

A service's lifespan creates one :class:`ServiceRuntime`, registers its consumers and loops, and enters it:

    runtime = ServiceRuntime(settings, "executor")
    async with runtime:
        runtime.add_consumer(runtime.names.executor_queue.name, router)
        runtime.add_periodic("poller", poller.poll_once, every=settings.poll_interval)
        runtime.start()
        yield
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.cloudwatch_metrics import CloudWatchMetricExporter
from seqferry_shared.idempotency import IdempotencyStore
from seqferry_shared.messaging.consumer import SqsConsumer
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.messaging.routing import Router
from seqferry_shared.periodic import Interval, Wake, Work, run_periodically, wait_unless_stopping
from seqferry_shared.resources import ResourceNames
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import Telemetry, setup_telemetry

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]
# Time beyond the shutdown grace for consumers to return the messages of the handlers they cancel.
RETURN_MARGIN_S = 2.0


def cloudwatch_readers(settings: ServiceSettings, service: str) -> list[MetricReader]:
    """The CloudWatch metric exporter's reader, when the settings turn it on."""
    if not settings.cloudwatch_metrics:
        return []
    exporter = CloudWatchMetricExporter(
        lambda: sync_client("cloudwatch", settings), settings.names.metrics_namespace, service
    )
    return [
        PeriodicExportingMetricReader(exporter, export_interval_millis=settings.cloudwatch_metrics_interval_s * 1000)
    ]


def configure_logging(settings: ServiceSettings, service: str) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("botocore", "aiobotocore", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        service: str,
        *,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.names: ResourceNames = settings.names
        self.telemetry = telemetry or setup_telemetry(service, readers=cloudwatch_readers(settings, service))
        self.clients = ClientFactory(settings)
        self._publisher: EventPublisher | None = None
        self._idempotency: IdempotencyStore | None = None
        self.consumers: list[SqsConsumer] = []
        self._loops: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._checks: dict[str, Check] = {}
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> ServiceRuntime:
        events = await self.clients.get("events")
        ddb = await self.clients.get("dynamodb")
        self._publisher = EventPublisher(events, self.names.bus)
        self._idempotency = IdempotencyStore(ddb, self.names.table)
        self._checks["bus"] = lambda: events.describe_event_bus(Name=self.names.bus)
        self._checks["table"] = lambda: ddb.describe_table(TableName=self.names.table)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def publisher(self) -> EventPublisher:
        if self._publisher is None:
            raise RuntimeError("runtime not started: use 'async with runtime'")
        return self._publisher

    @property
    def idempotency(self) -> IdempotencyStore:
        if self._idempotency is None:
            raise RuntimeError("runtime not started: use 'async with runtime'")
        return self._idempotency

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the process is shutting down; loops should return when it is set."""
        return self._stopping

    async def client(self, service: str) -> Any:
        return await self.clients.get(service)

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    @property
    def checks(self) -> dict[str, Check]:
        return dict(self._checks)

    async def add_consumer(self, queue_name: str, router: Router, **options: Any) -> SqsConsumer:
        options.setdefault("wait_time_s", self.settings.sqs_wait_time_s)
        options.setdefault("visibility_timeout_s", self.settings.sqs_visibility_timeout_s)
        options.setdefault("shutdown_grace_s", self.settings.shutdown_grace_s)
        consumer = SqsConsumer(
            sqs=await self.clients.get("sqs"),
            queue_name=queue_name,
            router=router,
            name=self.service,
            idempotency=self.idempotency,
            telemetry=self.telemetry,
            **options,
        )
        self.consumers.append(consumer)
        self._checks[f"queue:{queue_name}"] = consumer.ping
        return consumer

    def add_periodic(self, name: str, work: Work, *, every: Interval, wake: Wake | None = None) -> None:
        """Background work in rounds until the process stops (:mod:`seqferry_shared.periodic`: its error policy)."""

        async def loop() -> None:
            await run_periodically(name, work, every=every, stopping=self._stopping, wake=wake)

        self._loops.append((name, loop))

    def start(self) -> None:
        for consumer in self.consumers:
            self._tasks.append(asyncio.create_task(self._guard(f"consumer {consumer.queue_name}", consumer.run)))
        for name, loop in self._loops:
            self._tasks.append(asyncio.create_task(self._guard(name, loop)))

    async def _guard(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping.is_set():
            try:
                await body()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # A loop that dies would leave the service half-alive behind a green health check.
                log.exception("%s crashed; restarting in 2 s", name)
                if await wait_unless_stopping(self._stopping, 2.0):
                    return

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop receiving; give in-flight work ``grace_s`` (``shutdown_grace_s``) to finish, then cancel it.

        Consumers return the messages of handlers they cancel to their queues (visible again at once); the wait
        here allows them a moment beyond the grace to do so.
        """
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        self._stopping.set()
        for consumer in self.consumers:
            consumer.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace + RETURN_MARGIN_S)
            for task in pending:
                task.cancel()
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=RETURN_MARGIN_S)
                if stuck:
                    # AWS does not answer: their messages come back when their visibility timeout ends.
                    log.warning("%d task(s) did not stop in time; exiting without them", len(stuck))
            self._tasks.clear()
        await self.clients.close()
        self.telemetry.tracer_provider.force_flush(5_000)
