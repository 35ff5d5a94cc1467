"""The datasync backend against moto's DataSync: real locations and task, moto's status progression.

moto has S3 and SMB locations (no NFS), runs one execution per task (it refuses a second while one runs, where
DataSync would queue it), advances one status per DescribeTaskExecution (starting with its own INITIALIZING),
and reports no counters. What moto lacks is covered by the stand-in (see the README).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from seqferry_shared.events.models import TransferRequested, TransferWindowOpened

pytestmark = pytest.mark.integration


@pytest.fixture
def moto_task(bootstrapped: dict[str, Any]) -> str:
    datasync = boto3.client("datasync")
    destination = datasync.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{bootstrapped['bucket']}",
        S3Config={"BucketAccessRoleArn": "arn:aws:iam::123456789012:role/seqferry-datasync"},
    )["LocationArn"]
    source = datasync.create_location_smb(
        ServerHostname="nas.lab.example",
        Subdirectory="/sequencers",
        User="datasync",
        Password="not-a-secret",
        AgentArns=["arn:aws:datasync:us-east-1:123456789012:agent/agent-0123456789abcdef0"],
    )["LocationArn"]
    return str(
        datasync.create_task(SourceLocationArn=source, DestinationLocationArn=destination, Name="sequencers")["TaskArn"]
    )


def window(tick: int) -> TransferWindowOpened:
    return TransferWindowOpened(
        task="sequencers",
        tick=tick,
        window_start="2024-11-24T00:00:00+00:00",
        window_end="2024-11-25T12:00:00+00:00",
        time_zone="UTC",
        includes=["/sequencers/incoming/miseq/241125*", "/adhoc"],
    )


async def test_execution_followed_through_moto_and_windows_coalesced(
    harness_for: Callable[..., Any], moto_task: str, tap: Any
):
    async with harness_for(datasync_task_arns={"sequencers": moto_task}) as h:
        # GIVEN a request started on moto's task
        await h.orchestrator.submit_request(TransferRequested(request_id="m-1", includes=["/adhoc/list.txt"]))

        # WHEN windows arrive while it runs (moto would refuse a second start: none is attempted)
        await h.orchestrator.poll_once()
        assert await h.orchestrator.submit_window(window(1)) == "queued"
        assert await h.orchestrator.submit_window(window(2)) == "coalesced"
        for _ in range(4):
            await h.orchestrator.poll_once()

        # THEN every moto status was reported, then exactly one follow-up execution started
        details = await tap.await_for(lambda d: len(d) >= 6)
        first = details[0]["execution_id"]
        assert tap.states(details, first) == ["LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]
        follow_ups = {d["execution_id"] for d in details} - {first}
        assert len(follow_ups) == 1
        assert "ERROR" not in tap.states(details)
        record = await h.store.get_execution(follow_ups.pop())
        assert record is not None
        assert record.trigger.kind == "window"
        assert record.includes == ["/sequencers/incoming/miseq/241125*", "/adhoc"]


async def test_moto_refusal_is_recorded_with_its_message(harness_for: Callable[..., Any], moto_task: str, tap: Any):
    # GIVEN an execution started outside seqferry (moto refuses any other start while it runs)
    boto3.client("datasync").start_task_execution(TaskArn=moto_task)
    async with harness_for(datasync_task_arns={"sequencers": moto_task}) as h:
        # WHEN seqferry starts one
        await h.orchestrator.submit_request(TransferRequested(request_id="m-2", includes=["/adhoc/x"]))

        # THEN moto's InvalidRequestException is an ERROR execution with moto's message, and the queue is free
        (detail,) = await tap.await_for(lambda d: len(d) == 1)
        assert detail["state"] == "ERROR"
        assert detail["error"] == {"code": "InvalidRequestException", "message": "Invalid request."}
        (queue,) = await h.orchestrator.queues()
        assert queue.active is None
        assert queue.items == ()
