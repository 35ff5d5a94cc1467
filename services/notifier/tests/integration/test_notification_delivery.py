"""Notifications reach SNS and a webhook, with retries; messages carry ids and counts only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import metrics

from seqferry_notifier.channels import BusChannel, SnsChannel, WebhookChannel
from seqferry_notifier.domain.notices import Channel, ChannelState, Notice, new_notice, take_lease
from seqferry_notifier.domain.notifications import NoticeKind, Notification
from seqferry_notifier.outbox import Channels, Outbox, new_owner
from seqferry_notifier.settings import NotifierSettings
from seqferry_notifier.store import notice_key, notice_records
from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.events.models import ErrorInfo, TransferState, utc_now
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.state.kinds import LISTING_INDEX, LISTING_PK, Listing
from seqferry_shared.testing.motoserver import free_port

pytestmark = pytest.mark.integration


@dataclass
class Hook:
    """A tiny local webhook that answers 503 to its first ``failures`` calls."""

    url: str
    failures: int
    calls: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    port = free_port()
    state = Hook(url=f"http://127.0.0.1:{port}/hooks/seqferry", failures=0)

    async def receive(request: web.Request) -> web.Response:
        state.calls.append(await request.json())
        await asyncio.sleep(state.delay_s)
        if len(state.calls) <= state.failures:
            return web.Response(status=503, text="try later")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hooks/seqferry", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_execution_failure_reaches_sns_and_webhook_after_retries(
    stack, notifier_settings, start_notifier, wait_for, executor_event, hook: Hook
) -> None:
    # GIVEN a webhook that fails twice before it accepts
    hook.failures = 2
    settings = notifier_settings(webhook_url=hook.url, webhook_retries=3, webhook_backoff_s=0.05)
    async with start_notifier(settings):
        # WHEN an execution fails
        error = ErrorInfo(code="VerificationFailed", message="/sequencers/incoming/miseq/R/SAMPLE_X.bam mismatch")
        stack.publish(executor_event("local-w", TransferState.ERROR, files=4, error=error))

        # THEN the webhook got the Slack-style JSON on the third try
        await wait_for(lambda: _at_least(hook.calls, 3), what="three webhook calls")
        payload = hook.calls[-1]
        assert payload == hook.calls[0]
        assert "Transfer execution local-w (local) ended in ERROR (VerificationFailed)" in payload["text"]
        assert payload["seqferry"]["type"] == "execution_failed"
        assert payload["seqferry"]["execution_id"] == "local-w"
        assert payload["seqferry"]["files_transferred"] == 4
        # AND SNS has the subject and JSON body; neither channel carries the file name
        notes = await wait_for(lambda: _drained(stack), what="SNS message")
        assert notes[0]["Subject"] == "seqferry: transfer execution local-w failed (VerificationFailed)"
        assert json.loads(notes[0]["Message"])["error_code"] == "VerificationFailed"
        assert "SAMPLE_X" not in json.dumps(hook.calls) + json.dumps(notes)


async def test_webhook_down_longer_than_its_retries_is_delivered_later(
    stack, notifier_settings, start_notifier, wait_for, executor_event, hook: Hook
) -> None:
    # GIVEN a webhook down for longer than one delivery's retries
    hook.failures = 3
    settings = notifier_settings(webhook_url=hook.url, webhook_retries=1, webhook_backoff_s=0.05)
    async with start_notifier(settings):
        # WHEN an execution fails
        stack.publish(executor_event("local-d", TransferState.ERROR, error=ErrorInfo(code="Boom", message="")))
        # THEN the outbox retries the webhook later (and only the webhook: SNS got exactly one message)
        await wait_for(lambda: _at_least(hook.calls, 4), what="webhook delivered by the sweeper")
        notes = await wait_for(lambda: _drained(stack), what="SNS message")
        assert len(notes) == 1


async def test_a_channel_slower_than_the_lease_is_sent_once(
    stack, notifier_settings, start_notifier, wait_for, executor_event, hook: Hook
) -> None:
    # GIVEN a webhook that takes 3 s to answer, an outbox lease of 1 s and a sweeper looking every 0.2 s
    hook.delay_s = 3.0
    settings = notifier_settings(
        webhook_url=hook.url, webhook_retries=0, webhook_timeout_s=10, notice_lease_s=1, sweep_interval_s=0.2
    )
    async with start_notifier(settings):
        # WHEN an execution fails (one notice: SNS + webhook)
        stack.publish(executor_event("local-slow", TransferState.ERROR, error=ErrorInfo(code="Boom", message="")))
        await wait_for(lambda: _at_least(hook.calls, 1), what="the webhook called")
        # THEN the delivering worker keeps its lease: once the notice is done, each channel got it exactly once
        await wait_for(lambda: _no_pending_notices(stack), timeout=30, what="the notice delivered")
        notes = await wait_for(lambda: _drained(stack), what="SNS message")
        assert len(hook.calls) == 1
        assert len(notes) == 1


async def _no_pending_notices(stack) -> bool:
    ddb = sync_client("dynamodb", NotifierSettings(prefix=stack.prefix, environment="test"))
    response = ddb.query(
        TableName=stack.table,
        IndexName=LISTING_INDEX,
        KeyConditionExpression=f"{LISTING_PK} = :pk",
        ExpressionAttributeValues={":pk": {"S": Listing.NOTIFIER_NOTICES_PENDING.value}},
        Select="COUNT",
    )
    return response["Count"] == 0


async def _at_least(calls: list[Any], n: int) -> bool:
    return len(calls) >= n


async def _drained(stack) -> list[dict[str, Any]]:
    return stack.drain(stack.sns_queue_url)


@asynccontextmanager
async def outbox_on_the_stack(stack, settings: NotifierSettings, hook: Hook) -> AsyncIterator[Outbox]:
    """The notifier's outbox (its real channels and state table, on the moto server), without the rest of it."""
    async with ClientFactory(settings) as clients, aiohttp.ClientSession() as http:
        yield Outbox(
            notice_records(await clients.get("dynamodb"), stack.table),
            Channels(
                bus=BusChannel(EventPublisher(await clients.get("events"), stack.bus)),
                sns=SnsChannel(await clients.get("sns"), stack.topic_arn),
                webhook=WebhookChannel(http, hook.url, retries=0, timeout_s=30, backoff_s=0),
            ),
            clock=utc_now,
            lease=timedelta(seconds=settings.notice_lease_s),
            send_timeout=timedelta(seconds=settings.notice_send_timeout_s),
            max_attempts=settings.notice_max_attempts,
            retry_base_s=settings.notice_retry_base_s,
            sent=metrics.get_meter("test").create_counter("sent"),
        )


def a_notice(*, opened_s_ago: float, lease_s: float) -> Notice:
    """A notice as the service builds it: leased to its opener from the moment it started building it."""
    return new_notice(
        pk=f"execution#{uuid.uuid4().hex}",
        sk="notice#failed",
        notification=Notification(kind=NoticeKind.EXECUTION_FAILED, subject="s", text="t", fields={}),
        now=utc_now() - timedelta(seconds=opened_s_ago),
        lease=timedelta(seconds=lease_s),
        webhook=True,
        owner=new_owner(),
    )


async def sweep(outbox: Outbox, notice: Notice, every_s: float) -> None:
    """Another worker's sweeper: take over and deliver whatever notice's lease lapsed, until ``notice`` is done."""
    while True:
        await outbox.retry_due()
        current = await outbox.existing(notice_key(notice))
        if current is not None and current.done:
            return
        await asyncio.sleep(every_s)


async def test_a_notice_opened_late_with_a_slow_channel_is_sent_once(stack, notifier_settings, hook: Hook) -> None:
    # GIVEN a lease of 1 s, a webhook that takes 2 s to answer, and a notice whose lease was computed 0.9 s before
    # it was opened (its checksum manifest took that long), with a sweeper looking for lapsed leases every 0.1 s
    hook.delay_s = 2.0
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as outbox:
        notice = a_notice(opened_s_ago=0.9, lease_s=1)
        assert await outbox.open(notice)
        # WHEN its opener delivers it while the sweeper runs
        sweeper = asyncio.create_task(sweep(outbox, notice, every_s=0.1))
        await outbox.deliver(notice)
        await asyncio.wait_for(sweeper, timeout=30)
        # THEN each channel got it exactly once, and nobody took the notice over
        stored = await outbox.existing(notice_key(notice))
    assert stored is not None
    assert stored.done
    assert stored.takeovers == 0
    assert len(hook.calls) == 1
    assert len(stack.drain(stack.sns_queue_url)) == 1


async def test_a_holder_that_was_taken_over_sends_nothing(stack, notifier_settings, hook: Hook) -> None:
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as outbox:
        # GIVEN a notice whose opener stalled for longer than its lease, and another worker that took it over
        notice = a_notice(opened_s_ago=0, lease_s=1)
        assert await outbox.open(notice)
        key = notice_key(notice)
        later = utc_now() + timedelta(seconds=2)
        taken, _ = await outbox._notices.mutate(key, lambda n: (take_lease(n, later, outbox.lease, "other"), None))
        assert taken is not None
        assert taken.lease_owner == "other"
        # WHEN the stalled opener goes on delivering
        current = await outbox.deliver(notice)
    # THEN it sent nothing, and left the notice to its new holder
    assert hook.calls == []
    assert stack.drain(stack.sns_queue_url) == []
    assert current.lease_owner == "other"
    assert current.pending == [Channel.SNS, Channel.WEBHOOK]


async def test_a_send_that_outlives_its_deadline_is_cut_and_retried_later(stack, notifier_settings, hook) -> None:
    # GIVEN a webhook that answers after 3 s and a send deadline of 1 s
    hook.delay_s = 3.0
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=1, notice_retry_base_s=30)
    async with outbox_on_the_stack(stack, settings, hook) as outbox:
        notice = a_notice(opened_s_ago=0, lease_s=1)
        assert await outbox.open(notice)
        # WHEN it is delivered
        started = asyncio.get_running_loop().time()
        stored = await outbox.deliver(notice)
        took = asyncio.get_running_loop().time() - started
    # THEN SNS is ticked off; the webhook call was cut at its deadline and stays pending, to be retried later, the
    # error saying why
    assert took < 3.0
    assert len(hook.calls) == 1
    assert stored.channels[Channel.SNS] == ChannelState.SENT
    assert stored.pending == [Channel.WEBHOOK]
    assert stored.lease_owner is None
    assert stored.attempts == 1
    assert stored.last_error is not None
    assert "webhook: no answer within 1 s" in stored.last_error
