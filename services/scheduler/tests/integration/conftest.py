"""Scheduler integration fixtures: a queue subscribed to the test bus, telemetry kept out of the global provider."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from seqferry_shared.telemetry import Telemetry, setup_telemetry


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("scheduler-tests", set_global=False)


class WindowTap:
    """An SQS queue subscribed to the test bus for the scheduler's events."""

    def __init__(self, prefix: str) -> None:
        self.sqs = boto3.client("sqs")
        events = boto3.client("events")
        name = f"{prefix}-tap"
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=prefix, EventPattern=json.dumps({"source": ["seqferry.scheduler"]}))
        events.put_targets(Rule=name, EventBusName=prefix, Targets=[{"Id": "tap", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def details(self) -> list[dict[str, Any]]:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return [e["detail"] for e in self.seen]
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            details = self.details()
            if predicate(details):
                return details
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout_s} s; saw {len(details)} event(s)")
            time.sleep(0.1)


@pytest.fixture
def tap(bootstrapped: dict[str, Any], resource_prefix: str) -> WindowTap:
    return WindowTap(resource_prefix)
