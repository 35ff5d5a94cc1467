"""DataSync's own events: best effort, no counters; reconciled with DescribeTaskExecution and polled to the end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from seqferry_shared.testing.datasync_events import datasync_state_change

pytestmark = pytest.mark.integration


def start_execution(stack) -> str:
    """A task and a running execution in the emulated DataSync (the notifier has never heard of it)."""
    source = stack.datasync.create_location_smb(
        ServerHostname="nas.lab", Subdirectory="/sequencers", User="svc", Password="x", AgentArns=["arn:aws:agent"]
    )["LocationArn"]
    destination = stack.datasync.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{stack.bucket}", S3Config={"BucketAccessRoleArn": "arn:aws:iam::123456789012:role/r"}
    )["LocationArn"]
    task = stack.datasync.create_task(SourceLocationArn=source, DestinationLocationArn=destination, Name="seq")[
        "TaskArn"
    ]
    return stack.datasync.start_task_execution(TaskArn=task)["TaskExecutionArn"]


def datasync_event(stack, arn: str, state: str) -> None:
    """What DataSync puts on the default bus (delivered to the notifier queue by the bootstrap rule)."""
    response = stack.events.put_events(Entries=[datasync_state_change(arn, state)])
    assert response["FailedEntryCount"] == 0


def queue_depth(stack, name: str) -> int:
    url = stack.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


async def test_unknown_execution_is_reconciled_and_a_lost_success_is_made_up_by_polling(
    stack, notifier_settings, start_notifier, wait_for
) -> None:
    # GIVEN an execution the notifier has never seen, running in DataSync
    arn = start_execution(stack)
    exec_id = arn.rsplit("/", 1)[1]
    async with start_notifier(notifier_settings()) as notifier:
        # WHEN DataSync's event says TRANSFERRING (and its SUCCESS event is lost: never sent)
        datasync_event(stack, arn, "TRANSFERRING")

        async def recorded() -> dict[str, Any] | None:
            response = await notifier.http.get(f"/executions/{exec_id}")
            return response.json() if response.status_code == 200 else None

        record = await wait_for(recorded, what="execution recorded")
        # THEN it is recorded under its id, with the ARN, and reconciled with DescribeTaskExecution
        assert record["arn"] == arn
        assert record["backend"] == "datasync"
        assert record["task"] == arn.split("/execution/")[0]
        assert "datasync_event" in record["sources"]

        async def succeeded() -> dict[str, Any] | None:
            body = await recorded()
            return body if body and body["state"] == "SUCCESS" else None

        # AND polling brings it to SUCCESS without any SUCCESS event
        record = await wait_for(succeeded, what="SUCCESS by polling")
        assert "describe" in record["sources"]
        assert record["reconcile"]["describes"] >= 2
        transitions = [h["state"] for h in record["history"] if h["transition"]]
        assert transitions[0] == "TRANSFERRING"
        assert transitions[-1] == "SUCCESS"
        assert record["finished_at"] is not None
        # AND the same ARN is found by its full ARN too
        assert (await notifier.http.get(f"/executions/{arn}")).json()["execution_id"] == exec_id
        # AND a terminal execution is no longer polled
        describes = record["reconcile"]["describes"]
        await wait_for(lambda: _sleep_true(1.5), what="a few poll intervals")
        assert (await recorded())["reconcile"]["describes"] == describes


async def _sleep_true(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


async def test_event_for_an_execution_datasync_does_not_know_is_recorded_not_crashed_on(
    stack, notifier_settings, start_notifier, wait_for
) -> None:
    # GIVEN an event naming an execution no DataSync here knows
    arn = "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890/execution/exec-0123456789abcdef0"
    async with start_notifier(notifier_settings()) as notifier:
        # WHEN it arrives
        datasync_event(stack, arn, "ERROR")

        async def recorded() -> dict[str, Any] | None:
            response = await notifier.http.get("/executions/exec-0123456789abcdef0")
            body = response.json() if response.status_code == 200 else None
            return body if body and body["reconcile"]["unreconcilable"] else None

        # THEN the event's state is kept, the execution is marked unreconcilable (no more polling)
        record = await wait_for(recorded, what="unreconcilable execution")
        assert record["state"] == "ERROR"
        assert record["reconcile"]["failures"] == 1
        # AND the message was consumed, not left to fail into the DLQ
        await wait_for(lambda: _zero(stack, f"{stack.prefix}-notifier"), what="queue drained")
        assert queue_depth(stack, f"{stack.prefix}-notifier-dlq") == 0


async def _zero(stack, name: str) -> bool:
    return queue_depth(stack, name) == 0
