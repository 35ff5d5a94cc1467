"""The outbox on the real state table and channels: each channel is sent each notice once, whoever delivers it.

The outbox is built here from the notifier's own parts (its channels, its state-table records) against the moto
server, without the rest of the service, so a test can hold a notice at the worst moment: opened late, taken over,
ticked off by an earlier holder, a table that refuses a write for a while.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from seqferry_notifier.channels import BusChannel, SnsChannel, WebhookChannel
from seqferry_notifier.domain.notices import Channel, ChannelState, Notice, new_notice, take_lease, tick_off
from seqferry_notifier.domain.notifications import NoticeKind, Notification
from seqferry_notifier.outbox import Channels, Outbox, new_owner
from seqferry_notifier.settings import NotifierSettings
from seqferry_notifier.store import notice_key, notice_records
from seqferry_shared.aws import ClientFactory
from seqferry_shared.events.models import utc_now
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.state.kinds import Key
from seqferry_shared.state.records import Records

pytestmark = pytest.mark.integration


class RefusingRecords:
    """The notices' records, except that the ``refuse``-numbered writes (1-based, in call order) fail as given."""

    def __init__(self, records: Records[Notice], refuse: dict[int, Exception]) -> None:
        self._records = records
        self._refuse = refuse
        self.writes = 0

    async def mutate(self, key: Key, change: Callable[[Notice | None], tuple[Notice | None, Any]]) -> Any:
        self.writes += 1
        failure = self._refuse.get(self.writes)
        if failure is not None:
            raise failure
        return await self._records.mutate(key, change)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)


@asynccontextmanager
async def outbox_on_the_stack(
    stack, settings: NotifierSettings, hook, *, refuse: dict[int, Exception] | None = None
) -> AsyncIterator[tuple[Outbox, Records[Notice], InMemoryMetricReader]]:
    """The notifier's outbox (its real channels and state table, on the moto server), the notices' records as
    another worker sees them, and the outbox's sent-counter."""
    reader = InMemoryMetricReader()
    counter = MeterProvider(metric_readers=[reader]).get_meter("test").create_counter("seqferry.notifications")
    async with ClientFactory(settings) as clients, aiohttp.ClientSession() as http:
        records: Any = notice_records(await clients.get("dynamodb"), stack.table)
        if refuse:
            records = RefusingRecords(records, refuse)
        yield (
            Outbox(
                records,
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
                sent=counter,
            ),
            notice_records(await clients.get("dynamodb"), stack.table),
            reader,
        )


def a_notice(*, opened_s_ago: float, lease_s: float, text: str = "t") -> Notice:
    """A notice as the service builds it: leased to its opener from the moment it started building it."""
    return new_notice(
        pk=f"execution#{uuid.uuid4().hex}",
        sk="notice#failed",
        notification=Notification(kind=NoticeKind.EXECUTION_FAILED, subject="s", text=text, fields={}),
        now=utc_now() - timedelta(seconds=opened_s_ago),
        lease=timedelta(seconds=lease_s),
        webhook=True,
        owner=new_owner(),
    )


def sent(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    """The outbox's sent-counter: (channel, outcome) -> count."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        (point.attributes["channel"], point.attributes["outcome"]): point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }


async def sweep(outbox: Outbox, notice: Notice, every_s: float) -> None:
    """Another worker's sweeper: take over and deliver whatever notice's lease lapsed, until ``notice`` is done."""
    while True:
        await outbox.retry_due()
        current = await outbox.existing(notice_key(notice))
        if current is not None and current.done:
            return
        await asyncio.sleep(every_s)


async def test_a_notice_opened_late_with_a_slow_channel_is_sent_once(stack, notifier_settings, hook) -> None:
    # GIVEN a lease of 1 s, a webhook that takes 2 s to answer, and a notice whose lease was computed 0.9 s before
    # it was opened (its checksum manifest took that long), with a sweeper looking for lapsed leases every 0.1 s
    hook.delay_s = 2.0
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as (outbox, _, _):
        notice = a_notice(opened_s_ago=0.9, lease_s=1)
        before = utc_now()
        assert await outbox.open(notice)
        # (its lease runs from when it was stored, not from when it was built)
        opened = await outbox.existing(notice_key(notice))
        assert opened is not None
        assert opened.lease_until >= before + outbox.lease
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


async def test_while_a_slow_channel_is_sent_the_notice_is_held_and_earlier_channels_are_ticked_off(
    stack, notifier_settings, hook, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a webhook that takes 2 s to answer, a send deadline of 10 s and a lease of 1 s
    hook.delay_s = 2.0
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as (outbox, _, reader):
        notice = a_notice(opened_s_ago=0, lease_s=1)
        assert await outbox.open(notice)
        # WHEN it is delivered (SNS first, then the webhook)
        delivery = asyncio.create_task(outbox.deliver(notice))
        while not hook.calls:
            await asyncio.sleep(0.02)
        called = utc_now()
        during = await outbox.existing(notice_key(notice))
        stored = await asyncio.wait_for(delivery, timeout=30)
    # THEN while the webhook call was in flight, SNS was already ticked off in the table, and the notice was held
    # for the whole send deadline plus the lease (nobody could take it over)
    assert during is not None
    assert during.channels[Channel.SNS] == ChannelState.SENT
    assert during.channels[Channel.WEBHOOK] == ChannelState.PENDING
    assert during.lease_until > called + timedelta(seconds=10)
    # AND in the end each channel took it once, counted once, and the lease is released
    assert stored.done
    assert stored.lease_owner is None
    assert len(hook.calls) == 1
    assert len(stack.drain(stack.sns_queue_url)) == 1
    assert sent(reader) == {("sns", "sent"): 1, ("webhook", "sent"): 1}
    assert "delivery incomplete" not in caplog.text


async def test_a_holder_that_was_taken_over_sends_nothing(stack, notifier_settings, hook) -> None:
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as (outbox, records, _):
        # GIVEN a notice whose opener stalled for longer than its lease, and another worker that took it over
        notice = a_notice(opened_s_ago=0, lease_s=1)
        assert await outbox.open(notice)
        later = utc_now() + timedelta(seconds=2)
        taken = await take_over(records, notice, later, outbox.lease)
        assert taken.lease_owner == "other"
        # WHEN the stalled opener goes on delivering
        current = await outbox.deliver(notice)
    # THEN it sent nothing, and left the notice to its new holder
    assert hook.calls == []
    assert stack.drain(stack.sns_queue_url) == []
    assert current.lease_owner == "other"
    assert current.pending == [Channel.SNS, Channel.WEBHOOK]


async def take_over(records: Records[Notice], notice: Notice, now: datetime, lease: timedelta) -> Notice:
    """Another worker takes ``notice`` over as of ``now``."""
    taken, _ = await records.mutate(notice_key(notice), lambda n: (take_lease(n, now, lease, "other"), None))
    assert taken is not None
    return taken


async def test_a_channel_an_earlier_holder_ticked_off_is_not_sent_again(stack, notifier_settings, hook) -> None:
    settings = notifier_settings(notice_lease_s=5, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as (outbox, records, reader):
        # GIVEN a notice whose SNS message an earlier holder sent, its tick landing after this worker read the notice
        notice = a_notice(opened_s_ago=0, lease_s=5)
        assert await outbox.open(notice)
        await records.mutate(notice_key(notice), lambda n: (tick_off(n, Channel.SNS, ChannelState.SENT), None))
        assert notice.pending == [Channel.SNS, Channel.WEBHOOK]  # what this worker still believes
        # WHEN this worker delivers from what it read
        stored = await outbox.deliver(notice)
    # THEN SNS is not sent again, and the webhook (after it) still is
    assert stack.drain(stack.sns_queue_url) == []
    assert len(hook.calls) == 1
    assert stored.done
    assert sent(reader) == {("webhook", "sent"): 1}


async def test_a_tick_the_table_refuses_for_a_while_is_written_and_the_delivery_goes_on(
    stack, notifier_settings, hook
) -> None:
    # GIVEN a table that refuses the tick after the SNS send twice (an error answer, then no connection)
    refuse: dict[int, Exception] = {
        2: ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "PutItem"),
        3: EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    }
    settings = notifier_settings(notice_lease_s=5, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook, refuse=refuse) as (outbox, _, _):
        notice = a_notice(opened_s_ago=0, lease_s=5)
        assert await outbox.open(notice)
        # WHEN it is delivered
        stored = await outbox.deliver(notice)
    # THEN the tick was written on the third try, and nothing was sent twice
    assert stored.done
    assert stored.channels == {Channel.SNS: ChannelState.SENT, Channel.WEBHOOK: ChannelState.SENT}
    assert len(stack.drain(stack.sns_queue_url)) == 1
    assert len(hook.calls) == 1


async def test_a_send_that_outlives_its_deadline_is_cut_and_retried_later(
    stack, notifier_settings, hook, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a webhook that answers after 3 s and a send deadline of 1 s
    hook.delay_s = 3.0
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=1, notice_retry_base_s=30)
    async with outbox_on_the_stack(stack, settings, hook) as (outbox, _, reader):
        notice = a_notice(opened_s_ago=0, lease_s=1)
        assert await outbox.open(notice)
        # WHEN it is delivered
        started = asyncio.get_running_loop().time()
        with caplog.at_level(logging.WARNING):
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
    assert "delivery incomplete: webhook: no answer within 1 s" in caplog.text
    assert sent(reader) == {("sns", "sent"): 1, ("webhook", "pending"): 1}


async def test_the_sweeper_delivers_due_notices_oldest_first(stack, notifier_settings, hook) -> None:
    settings = notifier_settings(notice_lease_s=1, notice_send_timeout_s=10)
    async with outbox_on_the_stack(stack, settings, hook) as (outbox, records, _):
        # GIVEN two notices whose holders died (their leases lapsed), the older one opened a minute earlier
        older = a_notice(opened_s_ago=60, lease_s=1, text="older")
        newer = a_notice(opened_s_ago=30, lease_s=1, text="newer")
        for notice in (newer, older):
            assert await records.save(notice, expected_version=None)
        # WHEN the sweeper runs once
        await outbox.retry_due()
    # THEN both were delivered, the older first
    assert [call["text"] for call in hook.calls] == ["older", "newer"]
