"""Notices: an outbox entry per thing to announce (bus event + SNS + webhook), delivered at least once.

A notice is created with a conditional write (so each run completion, run failure or execution failure is
announced by exactly one notice, with one event id). Whoever delivers it holds its *lease*: an owner token and a
deadline. Before each send the holder *fences*: a conditional write, made only while it still owns the notice,
that moves the deadline past the send's own deadline; a worker that lost the notice learns so before it sends,
never after. Each channel is ticked off as soon as it took the message, and the lease is released when the attempt
ends (with a backoff when a channel failed). Another worker takes the notice over only when the lease lapsed —
its holder died, or could not reach the state table — and then sends only the channels not ticked off yet.
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
    lease_owner: str | None = None
    attempts: int = 0
    takeovers: int = 0
    """Leases taken from a holder that never released it (it died, or lost the table for a whole lease)."""
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
    owner: str | None = None,
    event_type: str | None = None,
    event: dict[str, Any] | None = None,
) -> Notice:
    """A notice leased to ``owner`` (who opens it delivers it first)."""
    channels: dict[Channel, ChannelState] = {}
    if event is not None:
        channels[Channel.BUS] = ChannelState.PENDING
    channels[Channel.SNS] = ChannelState.PENDING
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
        lease_owner=owner,
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
    """Record the end of one delivery attempt and release the lease; gives up after ``max_attempts``.

    A channel already ticked off stays ticked off whatever ``outcomes`` says.
    """
    notice = notice.model_copy(deep=True)
    for channel, state in outcomes.items():
        if notice.channels.get(channel) == ChannelState.PENDING:
            notice.channels[channel] = state
    notice.lease_owner = None
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


def take_lease(notice: Notice, now: datetime, lease: timedelta, owner: str) -> Notice | None:
    """The notice leased to ``owner`` if its previous lease lapsed, else None (someone is on it)."""
    if notice.done or notice.lease_until > now:
        return None
    notice = notice.model_copy(deep=True)
    if notice.lease_owner is not None:
        notice.takeovers += 1
    notice.lease_until = now + lease
    notice.lease_owner = owner
    return notice


def fence(notice: Notice, now: datetime, hold: timedelta, owner: str) -> Notice | None:
    """The notice held by ``owner`` until at least ``now + hold``; None when someone else owns it now, or it is done.

    Written under the record's version, this is the check before each send. Ownership, not the clock, decides: a
    holder whose deadline passed unnoticed still owns the notice as long as nobody took it over (a takeover changes
    the owner, and the version), so it may go on; one that was taken over stops before sending.
    """
    if notice.done or notice.lease_owner != owner:
        return None
    notice = notice.model_copy(deep=True)
    notice.lease_until = max(notice.lease_until, now + hold)
    return notice


def tick_off(notice: Notice, channel: Channel, state: ChannelState) -> Notice | None:
    """Record that ``channel`` took the message (or refused it for good); None when that is already recorded.

    Recorded whoever holds the lease now: a message that was sent was sent.
    """
    if notice.channels.get(channel) != ChannelState.PENDING or state == ChannelState.PENDING:
        return None
    notice = notice.model_copy(deep=True)
    notice.channels[channel] = state
    return notice
