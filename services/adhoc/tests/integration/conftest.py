"""The adhoc service in-process behind real HTTP (uvicorn on a free port), against the moto server.

``capture`` adds a rule on the test's bus sending every ``seqferry.adhoc`` event to a queue of its own, so tests
observe exactly what the service put on the bus.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from seqferry_adhoc.app import create_app
from seqferry_adhoc.settings import AdhocSettings
from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.telemetry import Telemetry, setup_telemetry
from seqferry_shared.testing.motoserver import free_port

TOKEN = "integration-test-token-0123456789"


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("adhoc-tests", set_global=False)


@pytest.fixture
def adhoc_settings(bootstrapped: dict[str, Any], resource_prefix: str) -> AdhocSettings:
    return AdhocSettings(
        prefix=resource_prefix,
        environment="test",
        api_token=TOKEN,
        sqs_wait_time_s=1,
        sqs_visibility_timeout_s=5,
    )


@pytest.fixture
def capture_url(adhoc_settings: AdhocSettings) -> str:
    names = adhoc_settings.names
    sqs = sync_client("sqs", adhoc_settings)
    events = sync_client("events", adhoc_settings)
    url = str(sqs.create_queue(QueueName=f"{names.prefix}-capture")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=f"{names.prefix}-capture",
        EventBusName=names.bus,
        EventPattern=json.dumps({"source": ["seqferry.adhoc"]}),
        State="ENABLED",
    )
    events.put_targets(Rule=f"{names.prefix}-capture", EventBusName=names.bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


@dataclass
class Aws:
    s3: Any
    sqs: Any
    ddb: Any
    events: Any


@pytest.fixture
async def aws(adhoc_settings: AdhocSettings) -> AsyncIterator[Aws]:
    async with ClientFactory(adhoc_settings) as factory:
        yield Aws(
            await factory.get("s3"),
            await factory.get("sqs"),
            await factory.get("dynamodb"),
            await factory.get("events"),
        )


class RunningService:
    def __init__(self, settings: AdhocSettings, telemetry: Telemetry) -> None:
        self.settings = settings
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        app = create_app(settings, telemetry=telemetry)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        deadline = asyncio.get_running_loop().time() + 20
        while not self.server.started:
            if self.task.done():
                self.task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("adhoc service did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task

    def client(self, token: str | None = TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)


@pytest.fixture
def service_factory(adhoc_settings: AdhocSettings, telemetry: Telemetry) -> Callable[..., RunningService]:
    def make(**overrides: Any) -> RunningService:
        settings = adhoc_settings.model_copy(update=overrides) if overrides else adhoc_settings
        return RunningService(settings, telemetry)

    return make


@pytest.fixture
async def service(service_factory: Callable[..., RunningService]) -> AsyncIterator[RunningService]:
    running = service_factory()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


class Observer:
    """Reads what the service did: events captured from the bus, queue depths, objects, with polling helpers."""

    def __init__(self, aws: Aws, capture_url: str, settings: AdhocSettings) -> None:
        self.aws = aws
        self.capture_url = capture_url
        self.settings = settings
        self.seen: list[dict[str, Any]] = []

    async def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every event captured so far (EventBridge envelopes), optionally of one detail-type."""
        sqs = self.aws.sqs
        while True:
            response = await sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                await sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in self.seen if detail_type is None or e["detail-type"] == detail_type]

    async def depth(self, queue_name: str) -> int:
        sqs = self.aws.sqs
        url = (await sqs.get_queue_url(QueueName=queue_name))["QueueUrl"]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names))["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    async def object_json(self, key: str) -> Any:
        try:
            response = await self.aws.s3.get_object(Bucket=self.settings.names.bucket, Key=key)
        except self.aws.s3.exceptions.NoSuchKey:
            return None
        async with response["Body"] as body:
            return json.loads(await body.read())

    async def settled(self) -> None:
        """Wait until the adhoc queue holds nothing, in flight or waiting."""
        queue = self.settings.names.adhoc_queue.name
        await eventually(lambda: self._is_empty(queue), timeout_s=40)

    async def _is_empty(self, queue: str) -> bool:
        return await self.depth(queue) == 0


@pytest.fixture
def observer(aws: Aws, capture_url: str, adhoc_settings: AdhocSettings) -> Observer:
    return Observer(aws, capture_url, adhoc_settings)


async def eventually(predicate: Callable[[], Awaitable[Any]], timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)


@pytest.fixture
def poll() -> Callable[..., Awaitable[Any]]:
    """``await poll(async_predicate, timeout_s=...)``: the predicate's first truthy value, or AssertionError."""
    return eventually
