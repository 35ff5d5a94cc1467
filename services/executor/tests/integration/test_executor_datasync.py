"""The orchestrator and the datasync backend against the DataSync stand-in, with the table and bus on moto.

The test drives time: it submits events, moves executions with the stand-in and calls ``poll_once``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from seqferry_executor.backends.datasync import OVERRIDE_OPTIONS
from seqferry_executor.testing.datasync_standin import DataSyncStandIn
from seqferry_shared.aws import sync_client
from seqferry_shared.events.models import Meta, TransferRequested, TransferWindowOpened
from seqferry_shared.patterns import FILTER_VALUE_LIMIT
from seqferry_shared.testing.lifecycle import object_outcome

pytestmark = pytest.mark.integration

WINDOW_1 = ["/sequencers/incoming/miseq/241125*", "/sequencers/incoming/miseq/241124*", "/adhoc"]
WINDOW_2 = ["/sequencers/incoming/miseq/241126*", "/sequencers/incoming/miseq/241125*", "/adhoc"]


def window(tick: int, includes: list[str] = WINDOW_1, task: str = "sequencers") -> TransferWindowOpened:
    return TransferWindowOpened(
        meta=Meta(correlation_id=f"window#{task}#{tick}"),
        task=task,
        tick=tick,
        window_start="2024-11-24T00:00:00+00:00",
        window_end="2024-11-25T12:00:00+00:00",
        time_zone="UTC",
        includes=includes,
    )


def request(request_id: str, includes: list[str], task: str | None = None) -> TransferRequested:
    return TransferRequested(request_id=request_id, includes=includes, task=task, requested_by="lims")


@pytest.fixture
def task_arn(standin: DataSyncStandIn) -> str:
    return standin.create_task()


@pytest.fixture
def harness(harness_for: Callable[..., Any], standin: DataSyncStandIn, task_arn: str) -> Any:
    return harness_for(datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn})


async def test_request_runs_with_the_reference_options_and_reports_every_state(
    harness: Any, standin: DataSyncStandIn, task_arn: str, tap: Any
):
    async with harness as h:
        # GIVEN a valid request
        outcome = await h.orchestrator.submit_request(request("r-1", ["/sequencers/incoming/miseq/241125_M1_1_A/"]))

        # THEN one StartTaskExecution with the reference's options and the include filter
        assert outcome == "queued"
        (start,) = standin.starts(task_arn)
        assert start["OverrideOptions"] == OVERRIDE_OPTIONS
        assert start["Includes"] == [
            {"FilterType": "SIMPLE_PATTERN", "Value": "/sequencers/incoming/miseq/241125_M1_1_A/"}
        ]
        (execution,) = standin.executions_of(task_arn)

        # WHEN DataSync moves through its states with counters
        standin.advance(execution.arn, "PREPARING")
        await h.orchestrator.poll_once()
        standin.advance(
            execution.arn,
            "TRANSFERRING",
            EstimatedFilesToTransfer=3,
            EstimatedBytesToTransfer=300,
            FilesTransferred=1,
            BytesTransferred=100,
        )
        await h.orchestrator.poll_once()
        await h.orchestrator.poll_once()  # nothing changed: no event
        standin.advance(execution.arn, "VERIFYING", FilesTransferred=3, BytesTransferred=300)
        await h.orchestrator.poll_once()
        standin.advance(execution.arn, "SUCCESS", FilesVerified=3)
        await h.orchestrator.poll_once()

        # THEN each status change is one event with the counters, correlated to the request
        details = await tap.await_for(lambda d: "SUCCESS" in tap.states(d))
        assert tap.states(details) == ["LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]
        assert {d["execution_id"] for d in details} == {execution.arn}
        assert {d["meta"]["correlation_id"] for d in details} == {"r-1"}
        assert details[2]["counters"]["files_estimated"] == 3
        assert details[2]["counters"]["bytes_transferred"] == 100
        assert details[-1]["counters"]["files_verified"] == 3
        assert details[-1]["trigger"] == {"kind": "request", "id": "r-1"}
        # AND the execution and the request are persisted
        record = await h.store.get_execution(execution.arn)
        assert record is not None
        assert record.state == "SUCCESS"
        assert [s.state for s in record.history] == ["LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]
        stored = await h.store.get_request("r-1")
        assert stored is not None
        assert stored["executions"] == [execution.arn]
        assert stored["requested_by"] == "lims"


async def test_windows_while_an_execution_runs_coalesce_into_exactly_one_follow_up(
    harness: Any, standin: DataSyncStandIn, task_arn: str, tap: Any
):
    async with harness as h:
        # GIVEN a window execution running
        await h.orchestrator.submit_window(window(1))
        (first,) = standin.executions_of(task_arn)
        standin.advance(first.arn, "TRANSFERRING")

        # WHEN five more windows arrive while it runs, the last ones on the next day
        outcomes = [await h.orchestrator.submit_window(window(t, WINDOW_1 if t < 5 else WINDOW_2)) for t in range(2, 7)]
        await h.orchestrator.poll_once()

        # THEN nothing stacks: still one execution, one pending window holding every date
        assert outcomes == ["queued", "coalesced", "coalesced", "coalesced", "coalesced"]
        assert len(standin.starts(task_arn)) == 1
        (queue,) = await h.orchestrator.queues()
        assert [p.refs for p in queue.pending] == [("2", "3", "4", "5", "6")]

        # WHEN the running execution ends
        standin.advance(first.arn, "SUCCESS")
        await h.orchestrator.poll_once()

        # THEN exactly one follow-up starts, covering both days
        starts = standin.starts(task_arn)
        assert len(starts) == 2
        assert starts[1]["Includes"][0]["Value"].split("|") == [*WINDOW_1, "/sequencers/incoming/miseq/241126*"]
        second = standin.executions_of(task_arn)[1]
        standin.advance(second.arn, "SUCCESS")
        await h.orchestrator.poll_once()
        await h.orchestrator.poll_once()
        assert len(standin.starts(task_arn)) == 2
        details = await tap.await_for(lambda d: tap.states(d).count("SUCCESS") == 2)
        assert [d["trigger"]["id"] for d in details if d["state"] == "SUCCESS"] == ["1", "2"]
        assert not any(e.status == "QUEUED" for e in standin.executions_of(task_arn))


async def test_requests_queue_in_arrival_order(harness: Any, standin: DataSyncStandIn, task_arn: str):
    async with harness as h:
        await h.orchestrator.submit_window(window(1))
        await h.orchestrator.submit_request(request("r-1", ["/adhoc/a"]))
        await h.orchestrator.submit_window(window(2))
        await h.orchestrator.submit_request(request("r-2", ["/adhoc/b"]))
        await h.orchestrator.submit_window(window(3, WINDOW_2))

        values = []
        for _ in range(4):
            (running,) = [e for e in standin.executions_of(task_arn) if e.status == "LAUNCHING"]
            values.append(running.filter_value)
            standin.advance(running.arn, "SUCCESS")
            await h.orchestrator.poll_once()

        assert values[0] == "|".join(WINDOW_1)
        assert values[1:3] == ["/adhoc/a", "|".join([*WINDOW_1, "/sequencers/incoming/miseq/241126*"])]
        assert len(values) == 4
        assert values[3] == "/adhoc/b"
        assert len(standin.starts(task_arn)) == 4


async def test_patterns_one_character_over_the_limit_run_as_two_executions(
    harness: Any, standin: DataSyncStandIn, task_arn: str, tap: Any
):
    async with harness as h:
        # GIVEN include patterns whose joined value is 102,400 + 1 characters
        patterns = [f"/sequencers/incoming/miseq/{i:06d}_M00001_0001_000000000-AAAAA/" for i in range(3000)]
        while len("|".join(patterns)) > FILTER_VALUE_LIMIT + 1:
            patterns.pop()
        patterns[-1] = patterns[-1].rstrip("/") + "x" * (FILTER_VALUE_LIMIT + 1 - len("|".join(patterns))) + "/"
        assert len("|".join(patterns)) == FILTER_VALUE_LIMIT + 1

        # WHEN they are requested
        await h.orchestrator.submit_request(request("big", patterns))

        # THEN the first execution runs alone; the second starts when it ends
        assert len(standin.starts(task_arn)) == 1
        first = standin.executions_of(task_arn)[0]
        standin.advance(first.arn, "SUCCESS")
        await h.orchestrator.poll_once()
        starts = standin.starts(task_arn)
        assert len(starts) == 2
        second = standin.executions_of(task_arn)[1]
        standin.advance(second.arn, "SUCCESS")
        await h.orchestrator.poll_once()

        # AND no pattern was cut: the two filter values together are exactly the patterns, in order
        values = [s["Includes"][0]["Value"] for s in starts]
        assert all(len(v) <= FILTER_VALUE_LIMIT for v in values)
        assert values[0].split("|") + values[1].split("|") == patterns
        details = await tap.await_for(lambda d: tap.states(d).count("SUCCESS") == 2)
        assert {d["trigger"]["id"] for d in details} == {"big"}
        stored = await h.store.get_request("big")
        assert stored is not None
        assert stored["executions"] == [first.arn, second.arn]


async def test_throttling_and_internal_errors_are_retried_with_backoff(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, task_arn: str, tap: Any
):
    # GIVEN botocore making two attempts per call (one retry)
    harness = harness_for(
        datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn}, aws_max_attempts=2
    )
    async with harness as h:
        # AND DataSync throttles the next two StartTaskExecution calls
        standin.fail_next("StartTaskExecution", "ThrottlingException", times=2)

        # WHEN a request arrives: the first start fails after botocore's retry; the work stays queued, starting
        await h.orchestrator.submit_request(request("r-1", ["/adhoc/x"]))
        assert standin.starts(task_arn) == []
        (view,) = await h.orchestrator.queues()
        assert view.active is not None
        assert view.active.starting
        assert "ThrottlingException" in (h.orchestrator.backoff_of("sequencers") or "")

        # THEN later polls retry after the backoff until DataSync accepts, exactly once
        for _ in range(50):
            await h.orchestrator.poll_once()
            if standin.starts(task_arn):
                break
            await asyncio.sleep(0.05)
        assert len(standin.starts(task_arn)) == 1
        assert len(list(standin.calls_of("StartTaskExecution"))) == 3

        # AND an internal error while describing costs a poll, never an event
        execution = standin.executions_of(task_arn)[0]
        standin.fail_next("DescribeTaskExecution", "InternalException", times=2)
        standin.advance(execution.arn, "SUCCESS")
        for _ in range(3):
            await h.orchestrator.poll_once()
        details = await tap.await_for(lambda d: "SUCCESS" in tap.states(d))
        assert tap.states(details) == ["LAUNCHING", "SUCCESS"]


async def test_invalid_request_exception_is_recorded_with_its_message(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, task_arn: str, tap: Any
):
    # GIVEN a second task whose ARN DataSync does not know
    ghost = task_arn[:-1] + ("0" if task_arn[-1] != "0" else "1")
    harness = harness_for(datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn, "old": ghost})
    async with harness as h:
        # WHEN a request for it and then one for the good task arrive
        await h.orchestrator.submit_request(request("r-ghost", ["/adhoc/x"], task="old"))
        await h.orchestrator.submit_request(request("r-good", ["/adhoc/y"]))

        # THEN the refusal is an ERROR event with DataSync's message, recorded, and the queue moves on
        details = await tap.await_for(lambda d: len(d) >= 2)
        refused = next(d for d in details if d["trigger"]["id"] == "r-ghost")
        assert refused["state"] == "ERROR"
        assert refused["error"]["code"] == "InvalidRequestException"
        assert f"Task {ghost} not found." in refused["error"]["message"]
        record = await h.store.get_execution(refused["execution_id"])
        assert record is not None
        assert record.error is not None
        assert record.error.message == f"Task {ghost} not found."
        assert len(standin.starts(task_arn)) == 1


async def test_execution_errors_carry_datasync_result(harness: Any, standin: DataSyncStandIn, task_arn: str, tap: Any):
    async with harness as h:
        await h.orchestrator.submit_request(request("r-1", ["/adhoc/x"]))
        await h.orchestrator.submit_request(request("r-2", ["/adhoc/y"]))
        first = standin.executions_of(task_arn)[0]

        standin.advance(first.arn, "TRANSFERRING", FilesFailed={"Transfer": 2})
        standin.fail(first.arn, "FileNotFound", "2 files vanished during the transfer")
        await h.orchestrator.poll_once()

        details = await tap.await_for(lambda d: "ERROR" in tap.states(d))
        error = next(d for d in details if d["state"] == "ERROR")
        assert error["error"] == {"code": "FileNotFound", "message": "2 files vanished during the transfer"}
        assert error["counters"]["files_failed"] == 2
        assert len(standin.starts(task_arn)) == 2  # the next request runs


async def test_datasync_queueing_is_followed(harness: Any, standin: DataSyncStandIn, task_arn: str, tap: Any):
    # GIVEN someone else started an execution of the task outside seqferry
    client = boto3.client("datasync", endpoint_url=standin.url, region_name="us-east-1")
    other = client.start_task_execution(
        TaskArn=task_arn, Includes=[{"FilterType": "SIMPLE_PATTERN", "Value": "/adhoc/manual"}]
    )["TaskExecutionArn"]
    async with harness as h:
        # WHEN seqferry starts one: DataSync queues it (different filters)
        await h.orchestrator.submit_request(request("r-1", ["/adhoc/x"]))
        ours = standin.executions_of(task_arn)[1]
        assert ours.status == "QUEUED"

        # THEN QUEUED is reported, then the launch once the other one ends
        standin.advance(other, "SUCCESS")
        await h.orchestrator.poll_once()
        details = await tap.await_for(lambda d: len(d) >= 2)
        assert tap.states(details) == ["QUEUED", "LAUNCHING"]


async def test_polling_resumes_after_a_restart(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, task_arn: str, tap: Any
):
    settings = {"datasync_endpoint_url": standin.url, "datasync_task_arns": {"sequencers": task_arn}}
    # GIVEN an executor that started an execution and saw it transferring, then stopped
    async with harness_for(**settings) as h:
        await h.orchestrator.submit_window(window(1))
        await h.orchestrator.submit_window(window(2))
        execution = standin.executions_of(task_arn)[0]
        standin.advance(execution.arn, "TRANSFERRING")
        await h.orchestrator.poll_once()

    # WHEN the execution finishes while no executor runs, and a new one starts
    standin.advance(execution.arn, "SUCCESS", FilesVerified=7)
    async with harness_for(**settings) as h:
        await h.orchestrator.poll_once()

        # THEN it follows the execution to its end, emits it, and runs the pending window
        details = await tap.await_for(lambda d: "SUCCESS" in tap.states(d))
        assert tap.states(details, execution.arn) == ["LAUNCHING", "TRANSFERRING", "SUCCESS"]
        success = next(d for d in details if d["state"] == "SUCCESS")
        assert success["counters"]["files_verified"] == 7
        assert len(standin.starts(task_arn)) == 2


async def test_two_replicas_share_the_queue_without_double_starts(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, task_arn: str, tap: Any
):
    settings = {"datasync_endpoint_url": standin.url, "datasync_task_arns": {"sequencers": task_arn}}
    async with harness_for(owner="a", **settings) as a, harness_for(owner="b", **settings) as b:
        # WHEN both replicas receive work for the same task at the same time, and both poll
        await asyncio.gather(
            a.orchestrator.submit_window(window(1)),
            b.orchestrator.submit_request(request("r-1", ["/adhoc/a"])),
            a.orchestrator.submit_window(window(2, WINDOW_2)),
            b.orchestrator.submit_window(window(3, WINDOW_2)),
        )
        await asyncio.gather(a.orchestrator.poll_once(), b.orchestrator.poll_once())

        # THEN one execution runs; the rest waits, with at most one pending window; no window or request is lost
        assert len(standin.starts(task_arn)) == 1
        (queue,) = await a.orchestrator.queues()
        assert [i.kind.value for i in queue.pending].count("window") <= 1
        assert sorted(ref for item in queue.items for ref in item.refs) == ["1", "2", "3", "r-1"]
        items = len(queue.items)

        # WHEN executions end while both poll, each item runs once
        for _ in range(items):
            (running,) = [e for e in standin.executions_of(task_arn) if e.status == "LAUNCHING"]
            standin.advance(running.arn, "SUCCESS")
            for _ in range(3):
                await asyncio.gather(a.orchestrator.poll_once(), b.orchestrator.poll_once())
        assert len(standin.starts(task_arn)) == items
        (queue,) = await b.orchestrator.queues()
        assert queue.items == ()

        # AND a change both replicas saw is published with one event id (consumers keep one)
        def unique(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return list({d["meta"]["event_id"]: d for d in details}.values())

        details = unique(await tap.await_for(lambda d: tap.states(unique(d)).count("SUCCESS") == items))
        assert sorted(tap.states(details)) == ["LAUNCHING"] * items + ["SUCCESS"] * items


async def test_objects_an_execution_wrote_get_their_lifecycle_class_before_it_is_reported(
    harness: Any, standin: DataSyncStandIn, task_arn: str, tap: Any
):
    run = "/sequencers/incoming/miseq/241125_M00123_0007_000000000-ABCDE"
    async with harness as h:
        s3 = sync_client("s3", h.settings)
        bucket = h.settings.names.bucket
        # GIVEN an object of a run no execution includes (it must stay as it is)
        s3.put_object(Bucket=bucket, Key="sequencers/incoming/miseq/other/RunInfo.xml", Body=b"x")
        # AND an execution for the run and the ad-hoc folder
        await h.orchestrator.submit_request(request("r-classes", [f"{run}/", "/adhoc"]))
        (execution,) = standin.executions_of(task_arn)
        standin.advance(execution.arn, "TRANSFERRING")
        await h.orchestrator.poll_once()
        # WHEN DataSync writes the run's files into the bucket (untagged, as it writes from NFS) and succeeds
        written = {
            f"{run}/RunInfo.xml": (("GLACIER_IR", 30),),
            f"{run}/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl": (("DEEP_ARCHIVE", 30),),
            f"{run}/Data/Intensities/BaseCalls/L001/s_1_1101.filter": (("DEEP_ARCHIVE", 30),),
            f"{run}/InterOp/QMetricsOut.bin": (("GLACIER_IR", 30),),
            f"{run}/RTAComplete.txt": (("GLACIER_IR", 30),),
            "/adhoc/old-run/sample.bam": (),  # never archived
        }
        for nas_path in written:
            s3.put_object(
                Bucket=bucket, Key=nas_path.lstrip("/"), Body=b"data", Metadata={"user-agent": "aws-datasync"}
            )
        assert s3.get_object_tagging(Bucket=bucket, Key=f"{run}/RunInfo.xml"[1:])["TagSet"] == []
        standin.advance(execution.arn, "SUCCESS", FilesTransferred=len(written), FilesVerified=len(written))
        await h.orchestrator.poll_once()

        # THEN the SUCCESS is reported, and by then every object it wrote carries its class: the bucket's
        # lifecycle configuration (read back from the emulator) moves each where the README says
        await tap.await_for(lambda d: "SUCCESS" in tap.states(d))
        assert {p: object_outcome(s3, bucket, p.lstrip("/")).transitions for p in written} == written
        # ... and nothing outside the execution's include patterns was touched
        untouched = s3.get_object_tagging(Bucket=bucket, Key="sequencers/incoming/miseq/other/RunInfo.xml")
        assert untouched["TagSet"] == []
