"""A test queue subscribed to a seqferry bus: every event from the given sources, in arrival order."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import boto3

Details = list[dict[str, Any]]


class BusTap:
    def __init__(self, bus: str, sources: list[str] | None = None, *, name: str | None = None) -> None:
        """Subscribe ``<bus>-tap`` (or ``name``) to events from ``sources`` (default: every ``seqferry.*``)."""
        self.sqs = boto3.client("sqs")
        events = boto3.client("events")
        name = name or f"{bus}-tap"
        self.url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": sources} if sources else {"source": [{"prefix": "seqferry."}]}
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Receive whatever has arrived; returns every event seen so far (full EventBridge envelopes)."""
        while True:
            response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return list(self.seen)
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def details(self, detail_type: str | None = None) -> Details:
        return [e["detail"] for e in self.drain() if detail_type is None or e["detail-type"] == detail_type]

    def wait_for(self, predicate: Callable[[Details], bool], timeout_s: float = 20.0) -> Details:
        deadline = time.monotonic() + timeout_s
        while True:
            details = self.details()
            if predicate(details):
                return details
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout_s} s; saw {json.dumps(details)[:2000]}")
            time.sleep(0.1)

    async def await_for(self, predicate: Callable[[Details], bool], timeout_s: float = 20.0) -> Details:
        return await asyncio.to_thread(self.wait_for, predicate, timeout_s)

    @staticmethod
    def states(details: Details, execution_id: str | None = None) -> list[str]:
        return [str(d["state"]) for d in details if execution_id is None or d["execution_id"] == execution_id]
