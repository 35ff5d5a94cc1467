"""The notice outbox: open a notice once (conditional write), deliver it channel by channel, retry what failed.

Before each send the holder fences: a conditional write, made only while it still owns the notice, that holds the
notice for the send's whole deadline (``send_timeout``) plus the lease; the send is cancelled at that deadline. So
however slow a channel is (a throttled bus, a webhook timing out) or however long the notice waited between being
opened and delivered (a checksum manifest built over thousands of objects), no other worker can take the notice
over while a send is in flight, and a worker that was taken over learns so before it sends, never after. Each
channel is ticked off as soon as it took the message, so whoever delivers next sends only what is still pending.
A repeat remains possible only when the sending process dies (or loses the state table for longer than the lease)
between a channel taking the message and the tick being written, or when a channel took the message but did not
answer within ``send_timeout``: then the same event, with the same ``meta.event_id``, is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry.metrics import Counter

from seqferry_notifier.channels import BusChannel, DeliveryError, PermanentDeliveryError, SnsChannel, WebhookChannel
from seqferry_notifier.domain.notices import (
    Channel,
    ChannelState,
    Notice,
    after_attempt,
    fence,
    take_lease,
    tick_off,
)
from seqferry_notifier.store import iso, notice_key
from seqferry_shared.state.kinds import Key, Listing
from seqferry_shared.state.records import Records, StoreConflictError

log = logging.getLogger(__name__)


def new_owner() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Channels:
    bus: BusChannel
    sns: SnsChannel
    webhook: WebhookChannel | None = None


class LeaseLostError(Exception):
    """Another worker took the notice over (this one's lease lapsed), or the notice is done."""


class Outbox:
    def __init__(
        self,
        notices: Records[Notice],
        channels: Channels,
        *,
        clock: Callable[[], datetime],
        lease: timedelta,
        send_timeout: timedelta,
        max_attempts: int,
        retry_base_s: float,
        sent: Counter,
    ) -> None:
        self._notices = notices
        self._channels = channels
        self._clock = clock
        self.lease = lease
        self.send_timeout = send_timeout
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._sent = sent

    @property
    def webhook_enabled(self) -> bool:
        return self._channels.webhook is not None

    async def open(self, notice: Notice) -> bool:
        """Store a new notice, its lease running from now; False when one with the same key exists (it was, or is
        being, delivered)."""
        if notice.lease_owner is not None:
            notice = notice.model_copy(update={"lease_until": self._clock() + self.lease})
        return await self._notices.save(notice, expected_version=None)

    async def existing(self, key: Key) -> Notice | None:
        return await self._notices.get(key)

    async def _send(self, channel: Channel, notice: Notice) -> None:
        if channel == Channel.BUS:
            if notice.event is None or notice.event_type is None:
                raise PermanentDeliveryError("notice has no event to publish")
            await self._channels.bus.send(notice.event_type, notice.event)
        elif channel == Channel.SNS:
            await self._channels.sns.send(notice.notification)
        elif self._channels.webhook is not None:
            await self._channels.webhook.send(notice.notification)
        else:
            raise PermanentDeliveryError("webhook no longer configured")

    async def deliver(self, notice: Notice) -> Notice:
        """Send every pending channel once, ticking each off as it goes; the caller holds the lease."""
        owner = notice.lease_owner
        if owner is None:
            raise ValueError(f"notice {notice.pk}/{notice.sk}: deliver() needs a leased notice")
        outcomes: dict[Channel, ChannelState] = {}
        errors: list[str] = []
        try:
            for channel in notice.pending:
                current, deadline = await self._fence(notice, owner, channel)
                if current.channels.get(channel) != ChannelState.PENDING:
                    continue  # an earlier holder's tick landed after this attempt began
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._send(channel, notice)
                    outcomes[channel] = ChannelState.SENT
                except PermanentDeliveryError as exc:
                    outcomes[channel] = ChannelState.FAILED
                    errors.append(str(exc))
                except DeliveryError as exc:
                    errors.append(str(exc))
                except TimeoutError:
                    errors.append(
                        f"{channel.value}: no answer within {self.send_timeout.total_seconds():g} s; if it took the "
                        "message, the retry repeats it (same event id)"
                    )
                state = outcomes.get(channel, ChannelState.PENDING)
                self._sent.add(
                    1, {"channel": channel.value, "kind": notice.notification.kind.value, "outcome": state.value}
                )
                if state != ChannelState.PENDING:
                    await self._tick_off(notice, channel, state)
        except LeaseLostError as exc:
            log.warning("notice %s/%s: %s; the new holder delivers what is pending", notice.pk, notice.sk, exc)
            return await self.existing(notice_key(notice)) or notice
        now = self._clock()
        error = "; ".join(errors) or None

        def record(current: Notice | None) -> tuple[Notice | None, None]:
            base = current or notice
            if base.lease_owner != owner:
                return None, None  # taken over meanwhile: the new holder records its own attempt
            updated = after_attempt(
                base,
                outcomes,
                now=now,
                error=error,
                max_attempts=self._max_attempts,
                retry_base_s=self._retry_base_s,
            )
            return updated, None

        stored, _ = await self._notices.mutate(notice_key(notice), record)
        if error:
            log.warning("notice %s/%s: delivery incomplete: %s", notice.pk, notice.sk, error)
        return stored or notice

    async def _fence(self, notice: Notice, owner: str, channel: Channel) -> tuple[Notice, float]:
        """Hold the notice for one send: its whole deadline plus the lease; the send's deadline (loop time).

        Raises LeaseLostError when another worker owns the notice now (the send must not happen), and lets a state
        table error through (nothing was sent; the notice is retried once its lease lapses).
        """
        started = asyncio.get_running_loop().time()
        hold = self.send_timeout + self.lease
        stored, held = await self._notices.mutate(
            notice_key(notice), partial(_fenced, now=self._clock(), hold=hold, owner=owner)
        )
        if not held or stored is None:  # (held: stored is the fenced notice)
            raise LeaseLostError(f"lease on {notice.pk}/{notice.sk} lost before sending to {channel.value}")
        return stored, started + self.send_timeout.total_seconds()

    async def _tick_off(self, notice: Notice, channel: Channel, state: ChannelState) -> None:
        """Record a channel's outcome, insisting while the table does not answer: an unrecorded send is resent."""
        delay = 0.2
        deadline = asyncio.get_running_loop().time() + 3 * self.lease.total_seconds()
        while True:
            try:
                await self._notices.mutate(
                    notice_key(notice), lambda current: (tick_off(current or notice, channel, state), None)
                )
                return
            except (ClientError, BotoCoreError, StoreConflictError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("notice %s/%s: could not record %s yet; retrying", notice.pk, notice.sk, channel.value)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def retry_due(self) -> None:
        """Deliver notices whose lease lapsed (a failed attempt's backoff ended, or its worker died), oldest first."""
        now = self._clock()
        for notice in await self._notices.query(
            Listing.NOTIFIER_NOTICES_PENDING, upper=iso(now) + "~", newest_first=False, limit=50
        ):
            leased, mine = await self._notices.mutate(
                notice_key(notice), partial(self._lease, now=self._clock(), owner=new_owner())
            )
            if mine and leased is not None:
                await self.deliver(leased)

    def _lease(self, current: Notice | None, now: datetime, owner: str) -> tuple[Notice | None, bool]:
        taken = take_lease(current, now, self.lease, owner) if current else None
        return taken, taken is not None


def _fenced(current: Notice | None, now: datetime, hold: timedelta, owner: str) -> tuple[Notice | None, bool]:
    held = fence(current, now, hold, owner) if current else None
    return held, held is not None
