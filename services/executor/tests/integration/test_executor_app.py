"""The executor app end to end in-process: bus -> rule -> SQS -> handlers -> DataSync stand-in -> bus; HTTP views."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import boto3
import httpx
import pytest

from seqferry_executor.app import create_app
from seqferry_executor.settings import ExecutorSettings
from seqferry_executor.testing.datasync_standin import DataSyncStandIn
from seqferry_shared.events.models import TransferRequested
from seqferry_shared.telemetry import Telemetry

pytestmark = pytest.mark.integration


def put(prefix: str, detail: TransferRequested, source: str = "lims.lab.example") -> None:
    response = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": prefix,
                "Source": source,
                "DetailType": detail.DETAIL_TYPE,
                "Detail": detail.model_dump_json(),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def queue_is_drained(settings: ExecutorSettings) -> bool:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.names.executor_queue.name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


async def eventually(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await asyncio.to_thread(predicate):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_duplicate_deliveries_make_one_execution_and_http_shows_it(
    settings_for: Callable[..., ExecutorSettings],
    standin: DataSyncStandIn,
    tap: Any,
    resource_prefix: str,
    telemetry: Telemetry,
):
    task_arn = standin.create_task()
    settings = settings_for(datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn})
    app = create_app(settings, telemetry=telemetry)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://executor") as client,
    ):
        # GIVEN the same Transfer Requested event delivered three times, and an invalid request
        request = TransferRequested(
            request_id="lims-42", includes=["/sequencers/incoming/miseq/241125_M00123_0001_000000000-ABCDE"]
        )
        for _ in range(3):
            put(resource_prefix, request)
        put(resource_prefix, TransferRequested(request_id="lims-43", includes=["/var/log/*"]))
        # AND one that does not match the published schema (no includes, an unknown field)
        events = boto3.client("events")
        events.put_events(
            Entries=[
                {
                    "EventBusName": resource_prefix,
                    "Source": "lims",
                    "DetailType": "Transfer Requested",
                    "Detail": json.dumps({"request_id": "lims-44", "include": ["/sequencers/incoming/miseq/x"]}),
                }
            ]
        )

        # WHEN the executor has consumed every message
        details = await tap.await_for(lambda d: "LAUNCHING" in tap.states(d) and tap.states(d).count("ERROR") == 2)
        await eventually(lambda: queue_is_drained(settings))

        # THEN one execution was started for the three deliveries; the invalid request is an ERROR event
        assert len(standin.starts(task_arn)) == 1
        execution_arn = standin.executions_of(task_arn)[0].arn
        assert [d["trigger"]["id"] for d in details if d["state"] == "LAUNCHING"] == ["lims-42"]
        rejected = {d["trigger"]["id"]: d for d in details if d["state"] == "ERROR"}
        assert "'/var/log/*': path is outside the allowed roots" in rejected["lims-43"]["error"]["message"]
        # AND the schema-invalid one is an ERROR event naming the fields, not a silent DLQ entry
        schema_error = rejected["lims-44"]["error"]["message"]
        assert "includes: Field required" in schema_error
        assert "include: Extra inputs are not permitted" in schema_error

        # AND the HTTP views show it
        assert (await client.get("/readyz")).json()["checks"]["backend:datasync"] == "ok"
        tasks = (await client.get("/tasks")).json()
        assert tasks == [
            {
                "task": "sequencers",
                "version": tasks[0]["version"],
                "active_execution": execution_arn,
                "active_part": "1/1",
                "starting": False,
                "start_error": None,
                "pending": [],
            }
        ]
        (active,) = (await client.get("/executions/active")).json()
        assert active["execution_id"] == execution_arn
        assert active["includes"] == request.includes
        one = await client.get(f"/executions/{execution_arn}")
        assert one.json()["state"] == "LAUNCHING"
        accepted = (await client.get("/requests/lims-42")).json()
        assert (accepted["status"], accepted["executions"]) == ("started", [execution_arn])
        refused = (await client.get("/requests/lims-43")).json()
        assert refused["status"] == "rejected"
        assert (await client.get("/requests/lims-44")).json()["status"] == "rejected"
        assert (await client.get("/requests/nope")).status_code == 404

        # WHEN DataSync finishes, the poller reports it
        standin.advance(execution_arn, "SUCCESS", FilesVerified=1)
        details = await tap.await_for(lambda d: "SUCCESS" in tap.states(d))
        assert tap.states(details, execution_arn) == ["LAUNCHING", "SUCCESS"]
        assert (await client.get("/executions/active")).json() == []
        recent = (await client.get("/executions", params={"limit": 5})).json()
        assert [r["execution_id"] for r in recent] == [execution_arn]
        assert json.dumps(recent)  # serialisable as returned
        metrics = (await client.get("/metrics")).text
        assert 'state="SUCCESS"' in metrics
        assert 'outcome="rejected"' in metrics
