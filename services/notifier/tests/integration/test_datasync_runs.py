"""Runs transferred by DataSync are announced from the bucket alone: the executor reports totals, no run summary,
and no NAS is mounted anywhere; the notifier finds the run folders the execution covered in S3."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seqferry_shared.events.models import Meta, TransferExecutionStateChanged, TransferState

pytestmark = pytest.mark.integration

TASK_ARN = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"


def datasync_success(
    executor_event: Any, includes: list[str], *, ended: datetime | None = None
) -> TransferExecutionStateChanged:
    """The executor's SUCCESS for a DataSync execution: totals only, no per-run summary."""
    arn = f"{TASK_ARN}/execution/exec-{uuid.uuid4().hex[:17]}"
    event: TransferExecutionStateChanged = executor_event(arn, TransferState.SUCCESS, files=7, backend="datasync")
    event.includes = includes
    if ended is not None:
        event.meta = Meta(correlation_id="window-1", occurred_at=ended)
    return event


async def run_view(notifier: Any, run_id: str) -> dict[str, Any] | None:
    response = await notifier.http.get(f"/runs/{run_id}")
    return response.json() if response.status_code == 200 else None


def completed(stack: Any, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen.extend(stack.drain(stack.bus_queue_url))
    return [e["detail"] for e in seen if e["detail-type"] == "Run Transfer Completed"]


async def test_datasync_runs_are_found_in_s3_and_announced_once(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN what DataSync copied into the bucket: a finished MiSeq run, one still being written (no marker yet),
    # and a run of another date that the execution's patterns do not cover
    finished, writing = make_run(), make_run()
    finished.upload(stack.s3, stack.bucket)
    writing.upload(stack.s3, stack.bucket, skip=("RTAComplete.txt",))
    other = make_run()
    other.run_id = "251124" + other.run_id[6:]
    other.upload(stack.s3, stack.bucket)
    window = ["/sequencers/incoming/miseq/251125*", "/adhoc"]
    seen: list[dict[str, Any]] = []
    async with start_notifier(notifier_settings()) as notifier:
        # WHEN the executor reports the DataSync execution's SUCCESS (no run summaries)
        first = datasync_success(executor_event, window)
        stack.publish(first)

        # THEN the finished run is announced with what S3 holds, from the bucket alone
        (detail,) = await wait_for(
            lambda: asyncio.sleep(0, completed(stack, seen)), what="Run Transfer Completed", timeout=60
        )
        assert detail["run_id"] == finished.run_id
        assert detail["files"] == len(finished.files)
        assert detail["bytes"] == sum(len(b) for b in finished.files.values())
        assert detail["completion_marker"] == "RTAComplete.txt"
        assert detail["executions"] == [first.execution_id.rsplit("/", 1)[1]]

        # AND the run still being written is tracked, waiting for its marker; the other date is not looked at
        async def written_run() -> dict[str, Any] | None:
            view = await run_view(notifier, writing.run_id)
            return view if view is not None and view["run"].get("blockers") else None

        view = await wait_for(written_run, what="run being written tracked with what it waits for", timeout=60)
        assert view["status"] == "in_progress"
        assert any("RTAComplete.txt" in blocker for blocker in view["run"]["blockers"]), view
        assert await run_view(notifier, other.run_id) is None
        # AND the execution lists both runs (recorded once every run it covered was tracked)

        async def execution_runs() -> list[str] | None:
            execution = (await notifier.http.get(f"/executions/{first.execution_id}")).json()
            runs = sorted(execution["run_ids"])
            return runs if len(runs) >= 2 else None

        assert await wait_for(execution_runs, what="the execution's runs") == sorted([finished.run_id, writing.run_id])

        # WHEN the next window's execution succeeds after the second run's marker was copied
        stack.s3.put_object(
            Bucket=stack.bucket, Key=writing.prefix + "RTAComplete.txt", Body=writing.files["RTAComplete.txt"]
        )
        stack.publish(datasync_success(executor_event, window))

        # THEN it is announced, and the first run is not announced again
        await wait_for(
            lambda: asyncio.sleep(0, len(completed(stack, seen)) == 2 or None),
            what="second Run Transfer Completed",
            timeout=60,
        )
        await asyncio.sleep(2)
        assert sorted(d["run_id"] for d in completed(stack, seen)) == sorted([finished.run_id, writing.run_id])


async def test_objects_written_after_the_execution_ended_wait_for_a_later_execution(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a complete run in S3 whose objects were all written after the execution we hear about had ended
    # (a later execution copied them: this one's SUCCESS says nothing about them)
    run = make_run()
    run.upload(stack.s3, stack.bucket)
    window = ["/sequencers/incoming/miseq/251125*"]
    seen: list[dict[str, Any]] = []
    async with start_notifier(notifier_settings()) as notifier:
        # WHEN that earlier execution's SUCCESS arrives
        stack.publish(datasync_success(executor_event, window, ended=datetime.now(UTC) - timedelta(minutes=10)))
        view = await wait_for(lambda: run_view(notifier, run.run_id), what="run tracked", timeout=60)

        # THEN the run is not delivered on its account
        await asyncio.sleep(2)
        assert completed(stack, seen) == []
        assert (await run_view(notifier, run.run_id) or view)["status"] == "in_progress"

        # WHEN the execution that copied them succeeds
        stack.publish(datasync_success(executor_event, window))

        # THEN the run is delivered
        (detail,) = await wait_for(
            lambda: asyncio.sleep(0, completed(stack, seen)), what="Run Transfer Completed", timeout=60
        )
        assert detail["run_id"] == run.run_id
