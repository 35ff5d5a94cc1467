"""Manifests end to end on the emulator: S3 upload → notification → Transfer Requested on the bus → result object."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from seqferry_adhoc.bucket import ManifestBucket, ManifestBytes
from seqferry_adhoc.domain.requests import ManifestRef
from seqferry_adhoc.errors import ManifestReadError, RequestNotPublishedError
from seqferry_adhoc.service import AdhocService
from seqferry_adhoc.store import record_key, request_records
from seqferry_shared.idempotency import IdempotencyStore
from seqferry_shared.messaging.envelopes import S3ObjectRecord
from seqferry_shared.messaging.publisher import EventPublisher

M = "/sequencers/incoming/miseq"
N = "/sequencers/incoming/nextseq"
EVENTS = Path(__file__).resolve().parents[1] / "events"
Poll = Callable[..., Awaitable[Any]]

pytestmark = pytest.mark.integration


def s3_notification(bucket: str, key: str, etag: str, *, event_name: str = "ObjectCreated:Put") -> str:
    """An S3 notification body as S3 sends it to SQS (key URL-encoded), from the sample in tests/events."""
    body = json.loads((EVENTS / "s3_object_created.json").read_text())
    record = body["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"] = {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    record["s3"]["object"]["key"] = quote_plus(key)
    record["s3"]["object"]["eTag"] = etag.strip('"')
    return json.dumps(body)


async def test_manifest_upload_requests_the_valid_lines_and_reports_every_line(
    service: Any, observer: Any, aws: Any, poll: Poll
) -> None:
    # GIVEN a running adhoc service and a Windows-made manifest (BOM, CRLF) mixing valid and hostile lines
    bucket = service.settings.names.bucket
    key = "adhoc/re-transfer 25 Nov+outage.txt"
    manifest = (
        "\ufeff# re-transfer after the NAS outage\r\n"
        f"{M}/241125_M00123_0001_000000000-ABCDE\r\n"
        f"{M}/../../etc/passwd\r\n"
        f"{N}/2411*\r\n"
        f"{M}/a|/etc\r\n"
        f"{M}/241125_M00123_0001_000000000-ABCDE/\r\n"
    )

    # WHEN it is uploaded to adhoc/
    await aws.s3.put_object(Bucket=bucket, Key=key, Body=manifest.encode())

    # THEN the result object lists what was accepted and what was rejected, with line numbers and reasons
    result = await poll(lambda: observer.object_json("adhoc/results/re-transfer 25 Nov+outage.txt.json"))
    accepted = [f"{M}/241125_M00123_0001_000000000-ABCDE", f"{N}/2411*"]
    assert result["status"] == "partially_accepted"
    assert result["manifest"]["key"] == key
    assert [a["pattern"] for a in result["accepted"]] == accepted
    assert [(r["line"], r["reason"]) for r in result["rejected"]] == [
        (3, "'.' and '..' segments not allowed"),
        (5, "'|' not allowed (it separates filter patterns)"),
    ]
    assert result["duplicates"] == [{"line": 6, "first_line": 2}]

    # AND one Transfer Requested with the accepted patterns is on the bus, then Adhoc Manifest Processed
    await observer.settled()
    requested = await observer.events("Transfer Requested")
    assert len(requested) == 1
    detail = requested[0]["detail"]
    assert requested[0]["source"] == "seqferry.adhoc"
    assert detail["includes"] == accepted
    assert detail["request_id"] == result["request_id"] == result["request_ids"][0]
    assert detail["meta"]["correlation_id"] == result["request_id"]
    processed = await observer.events("Adhoc Manifest Processed")
    assert len(processed) == 1, "the result object's own notification must not be processed as a manifest"
    assert processed[0]["detail"]["key"] == key
    assert processed[0]["detail"]["result_key"] == "adhoc/results/re-transfer 25 Nov+outage.txt.json"
    assert processed[0]["detail"]["accepted"] == accepted
    assert [r["line"] for r in processed[0]["detail"]["rejected"]] == [3, 5]

    # AND the executor's queue received the request through the real rule
    sqs = aws.sqs
    url = (await sqs.get_queue_url(QueueName=service.settings.names.executor_queue.name))["QueueUrl"]
    messages = (await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1))["Messages"]
    assert [json.loads(m["Body"])["detail"]["request_id"] for m in messages] == [result["request_id"]]

    # AND the request can be looked up over HTTP
    async with service.client() as http:
        response = await http.get(f"/transfers/{result['request_id']}")
    assert response.status_code == 200
    record = response.json()
    assert (record["source"], record["status"], record["includes"]) == ("manifest", "requested", accepted)
    assert record["manifest"]["result_key"] == "adhoc/results/re-transfer 25 Nov+outage.txt.json"
    assert record["rejected_count"] == 2


async def test_the_same_notification_delivered_three_times_requests_once(
    service_factory: Callable[..., Any], observer: Any, aws: Any
) -> None:
    # GIVEN a manifest in the bucket (S3's own notification switched off) and its notification queued three times
    settings = observer.settings
    bucket = settings.names.bucket
    await aws.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    key = "adhoc/redelivered.txt"
    put = await aws.s3.put_object(Bucket=bucket, Key=key, Body=f"{M}/241125_M00123_0001_000000000-ABCDE\n".encode())
    body = s3_notification(bucket, key, put["ETag"])
    queue_url = (await aws.sqs.get_queue_url(QueueName=settings.names.adhoc_queue.name))["QueueUrl"]
    for _ in range(3):
        await aws.sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    # WHEN the service consumes them (all three arrive in one batch, so they race)
    service = service_factory()
    await service.start()
    try:
        await observer.settled()
    finally:
        await service.stop()

    # THEN exactly one Transfer Requested and one Adhoc Manifest Processed were published
    assert len(await observer.events("Transfer Requested")) == 1
    assert len(await observer.events("Adhoc Manifest Processed")) == 1
    assert await observer.object_json("adhoc/results/redelivered.txt.json") is not None
    assert await observer.depth(settings.names.adhoc_queue.dlq_name) == 0


async def test_test_events_results_and_other_notifications_are_ignored(service: Any, observer: Any, aws: Any) -> None:
    # GIVEN notifications that are not manifests: S3's test event, a result object, a folder, a deletion
    settings = service.settings
    bucket = settings.names.bucket
    queue_url = (await aws.sqs.get_queue_url(QueueName=settings.names.adhoc_queue.name))["QueueUrl"]
    bodies = [
        (EVENTS / "s3_test_event.json").read_text(),
        s3_notification(bucket, "adhoc/results/x.txt.json", "e1"),
        s3_notification(bucket, "adhoc/folder/", "e2"),
        s3_notification(bucket, "adhoc/x.txt", "e3", event_name="ObjectRemoved:Delete"),
    ]
    # WHEN they are delivered
    for body in bodies:
        await aws.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    await observer.settled()
    # THEN they are consumed without publishing anything and without dead-lettering
    assert await observer.events() == []
    assert await observer.depth(settings.names.adhoc_queue.dlq_name) == 0


async def test_unreadable_manifests_are_retried_then_dead_lettered(
    service_factory: Callable[..., Any], observer: Any, aws: Any, poll: Poll
) -> None:
    # GIVEN a notification for an object that does not exist and one naming a foreign bucket
    settings = observer.settings
    queue_url = (await aws.sqs.get_queue_url(QueueName=settings.names.adhoc_queue.name))["QueueUrl"]
    await aws.sqs.send_message(
        QueueUrl=queue_url, MessageBody=s3_notification(settings.names.bucket, "adhoc/vanished.txt", "e1")
    )
    await aws.sqs.send_message(QueueUrl=queue_url, MessageBody=s3_notification("someone-else", "adhoc/x.txt", "e2"))

    # WHEN the service tries to process them
    service = service_factory()
    await service.start()
    try:
        # THEN after the queue's maxReceiveCount both are in the dead-letter queue, nothing was requested
        dlq = settings.names.adhoc_queue.dlq_name

        async def both_dead_lettered() -> bool:
            return await observer.depth(dlq) == 2

        await poll(both_dead_lettered, timeout_s=40)
    finally:
        await service.stop()
    assert await observer.events() == []


class FlakyBucket(ManifestBucket):
    """Fails the first read and the first result write, as a network or a crash would."""

    def __init__(self, s3: Any) -> None:
        super().__init__(s3)
        self.read_failures = 1
        self.write_failures = 1

    async def read(self, ref: ManifestRef, max_bytes: int) -> ManifestBytes:
        if self.read_failures:
            self.read_failures -= 1
            raise ManifestReadError("connection reset")
        return await super().read(ref, max_bytes)

    async def write_result(self, bucket: str, key: str, body: bytes) -> None:
        if self.write_failures:
            self.write_failures -= 1
            raise OSError("process killed while writing the result")
        await super().write_result(bucket, key, body)


async def test_failures_midway_are_retried_without_a_second_request(
    observer: Any, aws: Any, adhoc_settings: Any
) -> None:
    # GIVEN the service's use case wired to the emulator with a bucket that fails once on read and once on write
    names = adhoc_settings.names
    service = AdhocService(
        adhoc_settings,
        publisher=EventPublisher(aws.events, names.bus),
        store=request_records(aws.ddb, names.table),
        bucket=FlakyBucket(aws.s3),
        idempotency=IdempotencyStore(aws.ddb, names.table),
    )
    put = await aws.s3.put_object(Bucket=names.bucket, Key="adhoc/flaky.txt", Body=f"{M}/run1\n".encode())
    record = S3ObjectRecord(
        event_name="ObjectCreated:Put",
        bucket=names.bucket,
        key="adhoc/flaky.txt",
        size=len(f"{M}/run1\n"),
        etag=put["ETag"].strip('"'),
        version_id=None,
        sequencer="0055AED6DCD90281E5",
        event_time=None,
    )

    # WHEN the notification is handled: the read fails, then the result write fails after the request
    with pytest.raises(ManifestReadError):
        await service.on_notification(record)
    assert await observer.events() == []
    with pytest.raises(OSError, match="process killed"):
        await service.on_notification(record)
    # AND the redeliveries that follow succeed, then find the work done
    result = await service.on_notification(record)
    again = await service.on_notification(record)

    # THEN nothing was lost: the result exists, and the request reached the bus once, though the attempt that
    # published it failed afterwards (a consumer counting events sees one)
    assert result is not None
    assert again is None
    requested = await observer.events("Transfer Requested")
    assert len(requested) == 1
    assert {r["detail"]["request_id"] for r in requested} == {result.request_id}
    assert len(await observer.events("Adhoc Manifest Processed")) == 1
    assert (await observer.object_json("adhoc/results/flaky.txt.json"))["accepted"] == [
        {"line": 1, "pattern": f"{M}/run1"}
    ]


async def test_oversized_and_empty_manifests_are_rejected_without_request(
    service_factory: Callable[..., Any], observer: Any, aws: Any, poll: Poll
) -> None:
    # GIVEN a service that reads at most 64 bytes
    service = service_factory(adhoc_max_manifest_bytes=64)
    await service.start()
    bucket = observer.settings.names.bucket
    try:
        # WHEN a 200-byte manifest and an empty one are uploaded
        await aws.s3.put_object(Bucket=bucket, Key="adhoc/big.txt", Body=(f"{M}/" + "x" * 200 + "\n").encode())
        await aws.s3.put_object(Bucket=bucket, Key="adhoc/empty.txt", Body=b"")
        big = await poll(lambda: observer.object_json("adhoc/results/big.txt.json"))
        empty = await poll(lambda: observer.object_json("adhoc/results/empty.txt.json"))
        await observer.settled()
    finally:
        await service.stop()

    # THEN each has a rejection result naming the whole manifest (line 0), and nothing was requested
    assert (big["status"], big["request_id"], big["accepted"]) == ("rejected", None, [])
    assert big["rejected"][0]["line"] == 0
    assert "larger than the limit of 64 bytes" in big["rejected"][0]["reason"]
    assert empty["status"] == "rejected"
    assert "no path lines" in empty["rejected"][0]["reason"]
    assert await observer.events("Transfer Requested") == []
    assert len(await observer.events("Adhoc Manifest Processed")) == 2


async def test_an_api_request_that_cannot_be_published_is_recorded_as_failed(
    observer: Any, aws: Any, adhoc_settings: Any
) -> None:
    # GIVEN the use case publishing to a bus that does not exist
    names = adhoc_settings.names
    store = request_records(aws.ddb, names.table)
    service = AdhocService(
        adhoc_settings,
        publisher=EventPublisher(aws.events, f"{names.prefix}-missing", max_attempts=1),
        store=store,
        bucket=ManifestBucket(aws.s3),
        idempotency=IdempotencyStore(aws.ddb, names.table),
    )
    # WHEN a valid request is submitted
    with pytest.raises(RequestNotPublishedError) as caught:
        await service.submit([f"{M}/run1"], reason="outage", requested_by="ops")
    # THEN its record says failed, with the reason, and nothing reached the real bus
    record = await store.get(record_key(caught.value.request_id))
    assert record is not None
    assert record.status == "failed"
    assert record.error
    assert await observer.events() == []
