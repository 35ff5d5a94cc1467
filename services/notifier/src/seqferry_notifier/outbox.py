"""The notice outbox: open a notice once (conditional write), deliver it channel by channel, retry what failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry.metrics import Counter

from seqferry_notifier.channels import BusChannel, DeliveryError, PermanentDeliveryError, SnsChannel, WebhookChannel
from seqferry_notifier.domain.notices import Channel, ChannelState, Notice, after_attempt, take_lease
from seqferry_notifier.store import NOTICES_PENDING, Records, iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Channels:
    bus: BusChannel
    sns: SnsChannel
    webhook: WebhookChannel | None = None


class Outbox:
    def __init__(
        self,
        notices: Records[Notice],
        channels: Channels,
        *,
        clock: Callable[[], datetime],
        lease: timedelta,
        max_attempts: int,
        retry_base_s: float,
        sent: Counter,
    ) -> None:
        self._notices = notices
        self._channels = channels
        self._clock = clock
        self.lease = lease
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._sent = sent

    @property
    def webhook_enabled(self) -> bool:
        return self._channels.webhook is not None

    async def open(self, notice: Notice) -> bool:
        """Store a new notice; False when one with the same key exists (it was, or is being, delivered)."""
        return await self._notices.save(notice, expected_version=None)

    async def existing(self, pk: str, sk: str) -> Notice | None:
        found = await self._notices.load(pk, sk)
        return found.record if found else None

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
        """Send every pending channel once and record the outcome (the caller holds the lease)."""
        outcomes: dict[Channel, ChannelState] = {}
        errors: list[str] = []
        for channel in notice.pending:
            try:
                await self._send(channel, notice)
                outcomes[channel] = ChannelState.SENT
            except PermanentDeliveryError as exc:
                outcomes[channel] = ChannelState.FAILED
                errors.append(str(exc))
            except DeliveryError as exc:
                errors.append(str(exc))
            self._sent.add(
                1,
                {
                    "channel": channel.value,
                    "kind": notice.notification.kind.value,
                    "outcome": outcomes.get(channel, ChannelState.PENDING).value,
                },
            )
        now = self._clock()
        error = "; ".join(errors) or None

        def record(current: Notice | None) -> tuple[Notice | None, None]:
            updated = after_attempt(
                current or notice,
                outcomes,
                now=now,
                error=error,
                max_attempts=self._max_attempts,
                retry_base_s=self._retry_base_s,
            )
            return updated, None

        stored, _ = await self._notices.mutate(notice.pk, notice.sk, record)
        if error:
            log.warning("notice %s/%s: delivery incomplete: %s", notice.pk, notice.sk, error)
        return stored or notice

    async def retry_due(self) -> int:
        """Deliver notices whose lease lapsed (a failed attempt's backoff ended, or its worker died)."""
        now = self._clock()
        count = 0
        for notice in await self._notices.query(NOTICES_PENDING, upper=iso(now) + "~", newest_first=False, limit=50):
            leased, mine = await self._notices.mutate(notice.pk, notice.sk, lambda current: self._lease(current, now))
            if mine and leased is not None:
                await self.deliver(leased)
                count += 1
        return count

    def _lease(self, current: Notice | None, now: datetime) -> tuple[Notice | None, bool]:
        taken = take_lease(current, now, self.lease) if current else None
        return taken, taken is not None
