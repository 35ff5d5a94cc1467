"""The SQS consumer runtime against the moto server: bus → rule → queue → handler, DLQ, idempotency, shutdown."""

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import boto3
import pytest
from opentelemetry import trace

from seqferry_shared.errors import RetryLaterError
from seqferry_shared.events import Meta, TransferRequested, TransferWindowOpened
from seqferry_shared.events.aws import DataSyncStateChange
from seqferry_shared.messaging.routing import InvalidEvent, MessageContext, Router
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry
from seqferry_shared.testing.datasync_events import datasync_state_change


def request(event_id: Any = None) -> TransferRequested:
    meta = Meta(event_id=event_id) if event_id else Meta()
    return TransferRequested(meta=meta, request_id="r1", includes=["/sequencers/incoming/miseq/x"])


async def eventually(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def queue_depth(runtime: ServiceRuntime, name: str) -> int:
    sqs = await runtime.client("sqs")
    url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    attrs = await sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    a = attrs["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


async def depth_reaches(runtime: ServiceRuntime, name: str, expected: int, timeout_s: float = 30.0) -> int:
    """The queue's depth once it reached ``expected`` (or when ``timeout_s`` ran out)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (depth := await queue_depth(runtime, name)) != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return depth


async def test_event_reaches_consumer_with_producer_trace(runtime: ServiceRuntime, telemetry: Telemetry) -> None:
    # GIVEN a consumer on the executor queue
    seen: list[tuple[TransferRequested, int]] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        seen.append((detail, trace.get_current_span().get_span_context().trace_id))

    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router)
    runtime.start()
    # WHEN a producer publishes inside a span
    with telemetry.tracer.start_as_current_span("producer") as span:
        producer_trace = span.get_span_context().trace_id
        await runtime.publisher.publish(request())
    # THEN the handler ran once, in a span of the producer's trace
    await eventually(lambda: len(seen) == 1)
    assert seen[0][1] == producer_trace
    assert seen[0][0].meta.traceparent is not None
    await eventually(lambda: consumer.processed == 1)


async def test_invalid_messages_reach_the_dlq_and_serving_continues(
    runtime: ServiceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="seqferry_shared.messaging.consumer")
    handled: list[str] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        handled.append(detail.request_id)

    # a visibility timeout of a minute: a rejected message must come back at once, not when it lapses
    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router, visibility_timeout_s=60)
    # (every visibility change the consumer asks SQS for, as SQS receives it)
    events = await runtime.client("events")
    sqs = await runtime.client("sqs")
    delays: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        delays.append(params["VisibilityTimeout"])

    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", record)
    runtime.start()
    # GIVEN a schema-invalid event on the bus (no 'includes') and a body that is not JSON on the queue
    await events.put_events(
        Entries=[
            {
                "EventBusName": runtime.names.bus,
                "Source": "lims",
                "DetailType": "Transfer Requested",
                "Detail": json.dumps({"request_id": "bad"}),
            }
        ]
    )
    url = (await sqs.get_queue_url(QueueName=runtime.names.executor_queue.name))["QueueUrl"]
    await sqs.send_message(QueueUrl=url, MessageBody="{not json")
    # THEN both end in the DLQ after maxReceiveCount (within seconds), the log names the invalid field
    dlq = runtime.names.executor_queue.dlq_name

    assert await depth_reaches(runtime, dlq, 2) == 2
    assert any("includes: Field required" in r.getMessage() for r in caplog.records)
    assert any("not JSON" in r.getMessage() for r in caplog.records)
    # AND each was received exactly 5 times (the queue's maxReceiveCount) before the redrive moved it
    receives: dict[str, list[int]] = {}
    for record in caplog.records:
        text = record.getMessage()
        if " rejected (receive " in text:
            message_id = text.split("message ")[1].split(" ")[0]
            receives.setdefault(message_id, []).append(int(text.split("(receive ")[1].split(",")[0]))
    assert sorted(receives.values()) == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]
    assert (consumer.failed, consumer.processed) == (10, 0)
    # ... each time returned at once: a visibility timeout of 0, which SQS takes as "visible now" (it refuses -1)
    assert delays == [0] * 10
    # AND the consumer keeps serving valid messages
    await runtime.publisher.publish(request())
    await eventually(lambda: handled == ["r1"])


async def test_duplicates_run_once_and_failures_are_retried(runtime: ServiceRuntime) -> None:
    calls: list[str] = []
    router = Router()
    fail_first = {"r-fail"}

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        calls.append(detail.request_id)
        if detail.request_id in fail_first:
            fail_first.discard(detail.request_id)
            raise RuntimeError("transient failure")

    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router, retry_delay_s=1)
    runtime.start()
    # GIVEN the same event delivered three times
    same = request()
    await runtime.publisher.publish(same, same, same)
    # AND an event whose first handling fails
    failing = TransferRequested(request_id="r-fail", includes=["/x"])
    await runtime.publisher.publish(failing)
    # THEN the duplicate ran once, the failing one ran again and succeeded
    await eventually(lambda: consumer.processed == 4)
    assert calls.count("r1") == 1
    assert calls.count("r-fail") == 2
    assert await queue_depth(runtime, runtime.names.executor_queue.dlq_name) == 0


async def test_stop_finishes_in_flight_work(runtime: ServiceRuntime) -> None:
    started = asyncio.Event()
    finished: list[str] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        started.set()
        await asyncio.sleep(1.5)
        finished.append(detail.request_id)

    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router)
    runtime.start()
    await runtime.publisher.publish(request())
    await asyncio.wait_for(started.wait(), 20)
    # WHEN shutdown is requested while the handler runs
    await runtime.stop()
    # THEN the handler finished, the message was deleted, nothing is left behind
    assert finished == ["r1"]
    assert consumer.processed == 1
    assert await queue_depth_after_stop(runtime) == 0


async def queue_depth_after_stop(runtime: ServiceRuntime) -> int:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=runtime.names.executor_queue.name)["QueueUrl"]
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


async def test_a_handler_outliving_its_visibility_timeout_keeps_its_message(
    settings: Any, telemetry: Telemetry
) -> None:
    # GIVEN a visibility timeout of 2 s and a handler that takes 5 s, not guarded by idempotency: only the
    # heartbeat keeps the message invisible, so nobody else receives it while the handler runs
    calls: list[int] = []
    router = Router()

    @router.on(TransferRequested, idempotent=False)
    async def slow(detail: TransferRequested, ctx: MessageContext) -> None:
        calls.append(ctx.receive_count)
        await asyncio.sleep(5)

    async with ServiceRuntime(settings, "tests", telemetry=telemetry) as runtime:
        consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router, visibility_timeout_s=2)
        runtime.start()
        # WHEN one message arrives
        await runtime.publisher.publish(request())
        await eventually(lambda: consumer.processed == 1, timeout_s=30)
    # THEN it was handled once, at its first receive, and deleted
    assert calls == [1]
    assert await queue_depth_after_stop(runtime) == 0


async def test_work_cut_short_returns_to_the_queue_and_runs_once(settings: Any, telemetry: Telemetry) -> None:
    completions: list[str] = []
    started = asyncio.Event()

    def router_for(delay: float) -> Router:
        router = Router()

        @router.on(TransferRequested)
        async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
            started.set()
            await asyncio.sleep(delay)
            completions.append(detail.request_id)

        return router

    # GIVEN a worker whose grace period is shorter than its work
    async with ServiceRuntime(settings, "tests", telemetry=telemetry) as first:
        await first.add_consumer(first.names.executor_queue.name, router_for(30), shutdown_grace_s=0.5)
        first.start()
        await first.publisher.publish(request())
        await asyncio.wait_for(started.wait(), 20)
        await first.stop()
    assert completions == []
    # WHEN a second worker starts
    async with ServiceRuntime(settings, "tests", telemetry=telemetry) as second:
        consumer = await second.add_consumer(second.names.executor_queue.name, router_for(0))
        second.start()
        await eventually(lambda: consumer.processed == 1)
    # THEN the message was processed exactly once overall
    assert completions == ["r1"]


async def test_invalid_detail_goes_to_the_hook_once_instead_of_the_dlq(runtime: ServiceRuntime) -> None:
    rejections: list[tuple[str, str]] = []
    router = Router()

    async def on_invalid(event: InvalidEvent, ctx: MessageContext) -> None:
        rejections.append((event.event_id, event.reason))

    @router.on(TransferRequested, on_invalid=on_invalid)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        raise AssertionError("an invalid detail must not reach the handler")

    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router)
    runtime.start()
    events = await runtime.client("events")
    entry = {
        "EventBusName": runtime.names.bus,
        "Source": "lims",
        "DetailType": "Transfer Requested",
        "Detail": json.dumps({"request_id": "bad", "includes": "/not/a/list"}),
    }
    # GIVEN a schema-invalid event, and the same EventBridge event delivered again to the queue
    await events.put_events(Entries=[entry])
    await eventually(lambda: consumer.processed == 1)
    sqs = await runtime.client("sqs")
    url = await consumer.queue_url()
    body = json.dumps(
        {
            "id": rejections[0][0],
            "detail-type": "Transfer Requested",
            "source": "lims",
            "detail": json.loads(entry["Detail"]),
        }
    )
    await sqs.send_message(QueueUrl=url, MessageBody=body)
    await eventually(lambda: consumer.processed == 2)
    # THEN the hook ran once, with the reason naming the field, and nothing went to the DLQ
    assert len(rejections) == 1
    assert "includes: Input should be a valid list" in rejections[0][1]
    assert await queue_depth(runtime, runtime.names.executor_queue.dlq_name) == 0


async def test_an_event_from_a_source_its_type_does_not_trust_is_never_handled(
    runtime: ServiceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN consumers of a window event (only the scheduler opens windows) and of requests (anyone but aws.*)
    caplog.set_level(logging.ERROR, logger="seqferry_shared.messaging.consumer")
    handled: list[str] = []
    router = Router()

    @router.on(TransferWindowOpened)
    async def window(detail: TransferWindowOpened, ctx: MessageContext) -> None:
        handled.append("window")

    @router.on(TransferRequested)
    async def requested(detail: TransferRequested, ctx: MessageContext) -> None:
        handled.append(detail.request_id)

    await runtime.add_consumer(runtime.names.executor_queue.name, router)
    runtime.start()
    # WHEN spoofed events reach the queue without the rules (sent to it directly), then a genuine request
    sqs = await runtime.client("sqs")
    url = (await sqs.get_queue_url(QueueName=runtime.names.executor_queue.name))["QueueUrl"]
    now = datetime.now(UTC)
    window_detail = TransferWindowOpened(
        task="t", tick=1, window_start=now, window_end=now, time_zone="UTC", includes=["/sequencers/incoming/miseq/x"]
    )
    for source, detail in (("lims.lab.example", window_detail), ("aws.s3", request())):
        body = {"id": str(uuid4()), "source": source, "detail-type": detail.DETAIL_TYPE, "time": now.isoformat(),
                "detail": detail.model_dump(mode="json")}  # fmt: skip
        await sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    await runtime.publisher.publish(TransferRequested(request_id="genuine", includes=["/x"]), source="lims.lab.example")
    # THEN only the genuine one is handled; the spoofed ones are refused, named, and kept in the DLQ
    await eventually(lambda: handled == ["genuine"])
    assert await depth_reaches(runtime, runtime.names.executor_queue.dlq_name, 2) == 2
    assert handled == ["genuine"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "'Transfer Window Opened' from source 'lims.lab.example' is not trusted" in messages
    assert "'Transfer Requested' from source 'aws.s3' is not trusted" in messages


async def test_datasync_events_reach_a_typed_handler_and_malformed_ones_the_dlq(
    runtime: ServiceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a typed route for DataSync's own event on the notifier queue (fed from the account's default bus)
    caplog.set_level(logging.ERROR, logger="seqferry_shared.messaging.consumer")
    seen: list[DataSyncStateChange] = []
    router = Router()

    @router.on_aws(DataSyncStateChange)
    async def changed(event: DataSyncStateChange, ctx: MessageContext) -> None:
        seen.append(event)

    await runtime.add_consumer(runtime.names.notifier_queue.name, router)
    runtime.start()
    task = "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890"
    # WHEN DataSync reports a state change, and an event that names no execution arrives
    events = await runtime.client("events")
    await events.put_events(Entries=[datasync_state_change(f"{task}/execution/exec-0123456789abcdef0", "SUCCESS")])
    await events.put_events(Entries=[{**datasync_state_change(task, "ERROR"), "Resources": [task]}])
    # THEN the handler got one typed value; the other is kept in the DLQ, the log naming the field
    await eventually(lambda: len(seen) == 1)
    assert seen[0].state == "SUCCESS"
    assert seen[0].task_arn == task
    assert await depth_reaches(runtime, runtime.names.notifier_queue.dlq_name, 1) == 1
    assert len(seen) == 1
    assert any("resources: Value error, no DataSync task-execution ARN" in r.getMessage() for r in caplog.records)


async def test_a_failing_message_comes_back_after_the_retry_delay_doubled_per_receive_up_to_the_cap(
    runtime: ServiceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a handler that fails on the first three receives: foreseen once (RetryLaterError), then unexpectedly
    caplog.set_level(logging.WARNING, logger="seqferry_shared.messaging.consumer")
    failures: list[Exception] = [RetryLaterError("the NAS is busy"), RuntimeError("boom"), RuntimeError("boom")]
    receives: list[int] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        receives.append(ctx.receive_count)
        if failures:
            raise failures.pop(0)

    # AND every visibility change the consumer asks SQS for, as SQS receives it
    delays: list[int] = []
    sqs = await runtime.client("sqs")

    def record(params: dict[str, Any], **_: Any) -> None:
        delays.append(params["VisibilityTimeout"])

    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", record)
    consumer = await runtime.add_consumer(
        runtime.names.executor_queue.name, router, retry_delay_s=1, max_retry_delay_s=3
    )
    runtime.start()
    await runtime.publisher.publish(request())
    # THEN it is handled at its fourth receive, after back-offs of 1, 2 and (capped) 3 s
    await eventually(lambda: consumer.processed == 1, timeout_s=40)
    assert receives == [1, 2, 3, 4]
    assert delays == [1, 2, 3]
    assert consumer.failed == 3
    # AND the foreseen failure is a warning with its reason, the unexpected ones errors with their traceback
    retried = [r for r in caplog.records if "retried in 1 s: the NAS is busy" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in retried] == [(logging.WARNING, None)]
    failed = [r for r in caplog.records if " failed (receive " in r.getMessage()]
    assert [(r.levelno, r.exc_info is not None) for r in failed] == [(logging.ERROR, True)] * 2


async def test_messages_are_received_only_for_free_workers_so_none_waits_out_its_visibility(
    runtime: ServiceRuntime,
) -> None:
    # GIVEN two replicas of two workers each, a visibility timeout of 2 s, a first handler of 6 s and the others of
    # 3 s, not guarded by idempotency: a message received while no worker is free would wait, without a heartbeat,
    # until its timeout lapsed and the other replica received it again
    calls: list[tuple[str, int]] = []
    router = Router()

    @router.on(TransferRequested, idempotent=False)
    async def slow(detail: TransferRequested, ctx: MessageContext) -> None:
        calls.append((detail.request_id, ctx.receive_count))
        await asyncio.sleep(6 if len(calls) == 1 else 3)

    replicas = [
        await runtime.add_consumer(runtime.names.executor_queue.name, router, concurrency=2, visibility_timeout_s=2)
        for _ in range(2)
    ]
    # WHEN ten requests are on the queue at once
    await runtime.publisher.publish(*(TransferRequested(request_id=f"r{n}", includes=["/x"]) for n in range(10)))
    assert await depth_reaches(runtime, runtime.names.executor_queue.name, 10) == 10
    runtime.start()
    await eventually(lambda: sum(r.processed for r in replicas) >= 10 or any(n > 1 for _, n in calls), timeout_s=60)
    # THEN each was handled once, at its first receive
    assert sorted(calls) == sorted((f"r{n}", 1) for n in range(10))
    assert await depth_reaches(runtime, runtime.names.executor_queue.name, 0) == 0


def handler_of(seconds: float) -> tuple[Router, asyncio.Event, list[str]]:
    """A router whose request handler takes ``seconds``; the event it sets on start; the requests it completed."""
    started = asyncio.Event()
    completions: list[str] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        started.set()
        await asyncio.sleep(seconds)
        completions.append(detail.request_id)

    return router, started, completions


async def test_a_consumer_cancelled_by_its_owner_returns_its_messages_at_once(
    settings: Any, telemetry: Telemetry
) -> None:
    # GIVEN a handler of 3 s, a shutdown grace of 30 s and a visibility timeout of 60 s
    router, started, completions = handler_of(3)
    async with ServiceRuntime(settings, "tests", telemetry=telemetry) as runtime:
        consumer = await runtime.add_consumer(
            runtime.names.executor_queue.name, router, shutdown_grace_s=30, visibility_timeout_s=60
        )
        # (every visibility change the consumer asks SQS for, as SQS receives it)
        delays: list[int] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            delays.append(params["VisibilityTimeout"])

        (await runtime.client("sqs")).meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", record)
        running = asyncio.create_task(consumer.run())
        await runtime.publisher.publish(request())
        await asyncio.wait_for(started.wait(), 20)
        # WHEN its owner cancels it while the handler runs (no grace left)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # THEN the handler was cut short and its message is visible again at once, not after 60 s: a visibility
        # timeout of 0, which SQS takes as "visible now" (it refuses -1)
        assert completions == []
        assert await visible_messages(runtime) == 1
        assert delays == [0]


async def test_a_drain_cut_short_by_the_owner_returns_its_messages_at_once(settings: Any, telemetry: Telemetry) -> None:
    # GIVEN a handler of 3 s, a consumer allowing it 30 s to finish and a visibility timeout of 60 s
    router, started, completions = handler_of(3)
    async with ServiceRuntime(settings, "tests", telemetry=telemetry) as runtime:
        await runtime.add_consumer(
            runtime.names.executor_queue.name, router, shutdown_grace_s=30, visibility_timeout_s=60
        )
        runtime.start()
        await runtime.publisher.publish(request())
        await asyncio.wait_for(started.wait(), 20)
        # WHEN the service stops with a shorter grace than the consumer's (its drain is cancelled)
        await runtime.stop(grace_s=0.2)
        # THEN the handler was cut short and its message is visible again at once, not after 60 s
        assert completions == []
        assert await visible_messages(runtime) == 1


async def visible_messages(runtime: ServiceRuntime) -> int:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=runtime.names.executor_queue.name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


async def test_each_message_is_counted_with_its_outcome_and_timed(
    runtime: ServiceRuntime, telemetry: Telemetry
) -> None:
    # GIVEN a handler that takes half a second
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        await asyncio.sleep(0.5)

    queue = runtime.names.executor_queue.name
    labels = {"queue": queue, "outcome": "ok"}

    def sample(name: str) -> float:
        return telemetry.registry.get_sample_value(name, labels) or 0.0

    before = (sample("seqferry_messages_total"), sample("seqferry_message_seconds_count"))
    seconds_before = sample("seqferry_message_seconds_sum")
    consumer = await runtime.add_consumer(queue, router)
    runtime.start()
    # WHEN one message is handled
    await runtime.publisher.publish(request())
    await eventually(lambda: consumer.processed == 1)
    # THEN the metrics count it once as ok, and its duration is the handler's (half a second, not hours)
    assert (sample("seqferry_messages_total"), sample("seqferry_message_seconds_count")) == (
        before[0] + 1,
        before[1] + 1,
    )
    assert 0.5 <= sample("seqferry_message_seconds_sum") - seconds_before < 60


async def test_a_message_to_ignore_is_deleted_at_once_and_never_retried(
    runtime: ServiceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the test event S3 sends when a bucket notification is set up, on the queue
    caplog.set_level(logging.INFO, logger="seqferry_shared.messaging.consumer")
    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, Router())
    sqs = await runtime.client("sqs")
    url = await consumer.queue_url()
    await sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    runtime.start()
    # THEN it is deleted at its first receive, neither failed nor retried, the log saying why
    await eventually(lambda: consumer.processed == 1)
    assert consumer.failed == 0
    assert await depth_reaches(runtime, runtime.names.executor_queue.name, 0) == 0
    assert any(" ignored: s3:TestEvent" in r.getMessage() for r in caplog.records)


async def test_a_failed_receive_is_retried_and_the_consumer_goes_on(
    runtime: ServiceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a consumer whose first receive fails (the network drops), run on its own (no service to restart it)
    caplog.set_level(logging.ERROR, logger="seqferry_shared.messaging.consumer")
    handled: list[str] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        handled.append(detail.request_id)

    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router)
    failures = [ConnectionError("the network is down")]

    def fail_once(**_: Any) -> None:
        if failures:
            raise failures.pop()

    (await runtime.client("sqs")).meta.events.register("before-call.sqs.ReceiveMessage", fail_once)
    running = asyncio.create_task(consumer.run())
    # WHEN a request arrives after the failure
    await runtime.publisher.publish(request())
    # THEN the consumer logged the failure, kept receiving and handled it
    await eventually(lambda: handled == ["r1"] or running.done())
    assert handled == ["r1"]
    assert not running.done()
    assert any("receive failed; retrying" in r.getMessage() for r in caplog.records)
    consumer.stop()
    await running


async def test_the_heartbeat_renews_a_message_well_before_its_visibility_lapses(
    runtime: ServiceRuntime,
) -> None:
    # GIVEN a visibility timeout of 2 s and a handler of 4 s, and every renewal the consumer sends, timed
    started: list[float] = []
    renewals: list[float] = []
    router = Router()

    @router.on(TransferRequested, idempotent=False)
    async def slow(detail: TransferRequested, ctx: MessageContext) -> None:
        started.append(time.monotonic())
        await asyncio.sleep(4)

    def renewed(params: dict[str, Any], **_: Any) -> None:
        if params["VisibilityTimeout"] == 2:
            renewals.append(time.monotonic())

    (await runtime.client("sqs")).meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", renewed)
    consumer = await runtime.add_consumer(runtime.names.executor_queue.name, router, visibility_timeout_s=2)
    runtime.start()
    await runtime.publisher.publish(request())
    await eventually(lambda: consumer.processed == 1, timeout_s=30)
    # THEN it was renewed while the handler ran, each time with half the timeout still to go (not at the last
    # moment, when another worker may already have received it)
    assert len(renewals) >= 2
    deadlines = [started[0] + 2, *(r + 2 for r in renewals)]
    assert all(deadline - renewal >= 0.5 for renewal, deadline in zip(renewals, deadlines, strict=False))
