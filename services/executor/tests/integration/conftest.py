"""Executor integration fixtures: the DataSync stand-in, a tap on the bus, an orchestrator wired to moto."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest

from seqferry_executor.backends.datasync import DataSyncBackend
from seqferry_executor.orchestrator import Orchestrator
from seqferry_executor.settings import ExecutorSettings
from seqferry_executor.store import StateStore
from seqferry_executor.testing.datasync_standin import DataSyncStandIn
from seqferry_shared.aws import ClientFactory
from seqferry_shared.publisher import EventPublisher
from seqferry_shared.telemetry import Telemetry, setup_telemetry


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("executor-tests", set_global=False)


@pytest.fixture
def standin() -> Iterator[DataSyncStandIn]:
    server = DataSyncStandIn().start()
    try:
        yield server
    finally:
        server.stop()
    assert server.violations == [], "requests or responses that do not match botocore's DataSync model"


class BusTap:
    """An SQS queue subscribed to the test bus: what the executor published, in arrival order."""

    def __init__(self, prefix: str, sources: list[str]) -> None:
        self.sqs = boto3.client("sqs")
        events = boto3.client("events")
        name = f"{prefix}-tap"
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=prefix, EventPattern=json.dumps({"source": sources}))
        events.put_targets(Rule=name, EventBusName=prefix, Targets=[{"Id": "tap", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def _drain(self) -> None:
        while True:
            response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def details(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        self._drain()
        return [e["detail"] for e in self.seen if detail_type is None or e["detail-type"] == detail_type]

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 20.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            details = self.details()
            if predicate(details):
                return details
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout_s} s; saw {json.dumps(details)[:2000]}")
            time.sleep(0.1)

    async def await_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 20.0
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.wait_for, predicate, timeout_s)

    @staticmethod
    def states(details: list[dict[str, Any]], execution_id: str | None = None) -> list[str]:
        return [d["state"] for d in details if execution_id is None or d["execution_id"] == execution_id]


@pytest.fixture
def tap(bootstrapped: dict[str, Any], resource_prefix: str) -> BusTap:
    return BusTap(resource_prefix, ["seqferry.executor"])


@pytest.fixture
def settings_for(resource_prefix: str, bootstrapped: dict[str, Any]) -> Callable[..., ExecutorSettings]:
    def build(**overrides: Any) -> ExecutorSettings:
        values: dict[str, Any] = {
            "prefix": resource_prefix,
            "environment": "test",
            "backend": "datasync",
            "aws_max_attempts": 2,
            "poll_interval_s": 0.2,
            "retry_base_s": 0.05,
            "retry_max_s": 0.2,
            "sqs_wait_time_s": 1,
            "sqs_visibility_timeout_s": 10,
        }
        values.update(overrides)
        return ExecutorSettings(**values)

    return build


@dataclass
class Harness:
    settings: ExecutorSettings
    orchestrator: Orchestrator
    store: StateStore
    backend: DataSyncBackend


@pytest.fixture
def harness_for(
    settings_for: Callable[..., ExecutorSettings],
) -> Callable[..., Any]:
    """An orchestrator on moto (table, bus) and a DataSync endpoint, driven directly by the test."""

    def factory(owner: str = "test-replica", **overrides: Any) -> Any:
        settings = settings_for(**overrides)

        @asynccontextmanager
        async def enter() -> AsyncIterator[Harness]:
            async with ClientFactory(settings) as clients:
                backend = await DataSyncBackend.create(settings=settings, clients=clients)
                store = StateStore(await clients.get("dynamodb"), settings.names.table, record_ttl=timedelta(days=1))
                publisher = EventPublisher(await clients.get("events"), settings.names.bus)
                orchestrator = Orchestrator(
                    backend=backend,
                    store=store,
                    publisher=publisher,
                    roots=settings.roots,
                    default_task=settings.default_task,
                    known_tasks=set(settings.datasync_task_arns),
                    owner=owner,
                    retry_base_s=settings.retry_base_s,
                    retry_max_s=settings.retry_max_s,
                )
                try:
                    yield Harness(settings, orchestrator, store, backend)
                finally:
                    await backend.close()

        return enter()

    return factory
