"""docs/transfer-requested.md: its CLI entries, its Python example and its rule pattern work as printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from seqferry_shared.events.models import TransferRequested
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.validation import Accepted, validate_transfer

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[4] / "docs" / "transfer-requested.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def default_roots() -> list[str]:
    return [s.path for s in ServiceSettings(environment="test").sequencers] + ["/adhoc"]


def received(prefix: str, count: int) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{prefix}-executor")["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    for _ in range(10):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
        if len(bodies) >= count:
            break
    return bodies


def accepted(detail: dict[str, Any]) -> bool:
    request = TransferRequested.model_validate(detail)
    verdict = validate_transfer(
        task=request.task,
        includes=request.includes,
        roots=default_roots(),
        default_task="sequencers",
        known_tasks=None,
    )
    return isinstance(verdict, Accepted)


def test_cli_entries_are_a_valid_request_and_reach_the_executor_queue(
    bootstrapped: dict[str, Any], resource_prefix: str
):
    (entries_text,) = [b for b in blocks("json") if '"DetailType": "Transfer Requested"' in b]
    entries = json.loads(entries_text)
    assert entries[0]["EventBusName"] == "seqferry"
    assert accepted(json.loads(entries[0]["Detail"]))

    # WHEN the same entries are put on this test's bus (what `aws events put-events` does)
    entries[0]["EventBusName"] = resource_prefix
    assert boto3.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0

    # THEN the executor's queue has it
    (body,) = received(resource_prefix, 1)
    assert body["detail-type"] == "Transfer Requested"
    assert body["detail"]["request_id"] == "lims-20251125-0042"


def test_python_example_sends_a_valid_request(bootstrapped: dict[str, Any], resource_prefix: str):
    (code,) = [b for b in blocks("python") if "def request_transfer" in b]
    definition, call = code.split("\n\nrequest_id = request_transfer(")
    assert "reason=" in call
    namespace: dict[str, Any] = {}
    exec(compile(definition, str(DOC), "exec"), namespace)

    request_id = namespace["request_transfer"](
        ["/sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE/"],
        reason="test",
        requested_by="tests",
        bus=resource_prefix,
    )

    (body,) = received(resource_prefix, 1)
    assert body["source"] == "lims.lab.example"
    assert body["detail"]["request_id"] == request_id
    assert body["detail"]["meta"]["correlation_id"] == request_id
    assert accepted(body["detail"])


def test_documented_rule_pattern_matches_request_outcomes(bootstrapped: dict[str, Any], resource_prefix: str):
    # GIVEN the documented rule on this test's bus, delivering to a queue
    (pattern,) = [b for b in blocks("json") if '"seqferry.executor"' in b]
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=f"{resource_prefix}-follow")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{resource_prefix}-follow", EventBusName=resource_prefix, EventPattern=pattern)
    events.put_targets(
        Rule=f"{resource_prefix}-follow", EventBusName=resource_prefix, Targets=[{"Id": "q", "Arn": arn}]
    )

    # WHEN the executor reports a request's success, a window's success and a request still transferring
    for kind, state in (("request", "SUCCESS"), ("window", "SUCCESS"), ("request", "TRANSFERRING")):
        detail = {"state": state, "trigger": {"kind": kind, "id": "x"}}
        events.put_events(
            Entries=[
                {
                    "EventBusName": resource_prefix,
                    "Source": "seqferry.executor",
                    "DetailType": "Transfer Execution State Changed",
                    "Detail": json.dumps(detail),
                }
            ]
        )

    # THEN only the request's outcome matches
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["detail"] for m in messages] == [
        {"state": "SUCCESS", "trigger": {"kind": "request", "id": "x"}}
    ]
