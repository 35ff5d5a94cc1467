"""Notices: an outbox entry per thing to announce (bus event + SNS + webhook), delivered at least once.

A notice is created with a conditional write (so each run completion, run failure or execution failure is
announced by exactly one notice), then each channel is sent and ticked off; a notice whose delivery failed or whose
worker died is retried, channel by channel, after its lease lapses.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from seqferry_notifier.domain.notifications import Notification


class Channel(StrEnum):
    BUS = "bus"
    SNS = "sns"
    WEBHOOK = "webhook"


class ChannelState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up on: permanent refusal or too many attempts


class Notice(BaseModel):
    pk: str
    sk: str
    notification: Notification
    event_type: str | None = None
    event: dict[str, Any] | None = None
    channels: dict[Channel, ChannelState]
    created_at: datetime
    lease_until: datetime
    attempts: int = 0
    last_error: str | None = None

    @property
    def done(self) -> bool:
        return all(state != ChannelState.PENDING for state in self.channels.values())

    @property
    def pending(self) -> list[Channel]:
        return [c for c, s in self.channels.items() if s == ChannelState.PENDING]


def new_notice(
    *,
    pk: str,
    sk: str,
    notification: Notification,
    now: datetime,
    lease: timedelta,
    webhook: bool,
    event_type: str | None = None,
    event: dict[str, Any] | None = None,
) -> Notice:
    channels = {Channel.SNS: ChannelState.PENDING}
    if event is not None:
        channels[Channel.BUS] = ChannelState.PENDING
    if webhook:
        channels[Channel.WEBHOOK] = ChannelState.PENDING
    return Notice(
        pk=pk,
        sk=sk,
        notification=notification,
        event_type=event_type,
        event=event,
        channels=channels,
        created_at=now,
        lease_until=now + lease,
    )


def retry_delay(attempts: int, *, base_s: float = 5.0, cap_s: float = 600.0) -> timedelta:
    return timedelta(seconds=min(cap_s, base_s * 2 ** max(0, attempts - 1)))


def after_attempt(
    notice: Notice,
    outcomes: dict[Channel, ChannelState],
    *,
    now: datetime,
    error: str | None,
    max_attempts: int,
    retry_base_s: float = 5.0,
) -> Notice:
    """Record one delivery attempt; gives up on still-pending channels after ``max_attempts``."""
    notice = notice.model_copy(deep=True)
    notice.channels.update(outcomes)
    if notice.done:
        notice.lease_until = now
        return notice
    notice.attempts += 1
    notice.last_error = (error or "")[:500] or None
    if notice.attempts >= max_attempts:
        for channel in notice.pending:
            notice.channels[channel] = ChannelState.FAILED
        notice.lease_until = now
    else:
        notice.lease_until = now + retry_delay(notice.attempts, base_s=retry_base_s)
    return notice


def take_lease(notice: Notice, now: datetime, lease: timedelta) -> Notice | None:
    """The notice with a fresh lease if its previous one lapsed, else None (someone is on it)."""
    if notice.done or notice.lease_until > now:
        return None
    notice = notice.model_copy(deep=True)
    notice.lease_until = now + lease
    return notice
