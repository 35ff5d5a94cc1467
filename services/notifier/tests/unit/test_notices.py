from datetime import UTC, datetime, timedelta

from seqferry_notifier.domain.notices import (
    Channel,
    ChannelState,
    after_attempt,
    fence,
    new_notice,
    retry_delay,
    take_lease,
    tick_off,
)
from seqferry_notifier.domain.notifications import NoticeKind, Notification

NOW = datetime(2025, 11, 25, tzinfo=UTC)
LEASE = timedelta(seconds=60)
NOTE = Notification(kind=NoticeKind.RUN_COMPLETED, subject="s", text="t", fields={})


def notice(webhook: bool = True, owner: str | None = "first"):
    return new_notice(
        pk="run#R",
        sk="notice#completed",
        notification=NOTE,
        now=NOW,
        lease=LEASE,
        webhook=webhook,
        owner=owner,
        event_type="Run Transfer Completed",
        event={"run_id": "R"},
    )


def test_channels_follow_configuration() -> None:
    assert set(notice().channels) == {Channel.BUS, Channel.SNS, Channel.WEBHOOK}
    assert set(notice(webhook=False).channels) == {Channel.BUS, Channel.SNS}
    plain = new_notice(pk="p", sk="s", notification=NOTE, now=NOW, lease=LEASE, webhook=False)
    assert set(plain.channels) == {Channel.SNS}


def test_partial_delivery_retries_only_what_failed() -> None:
    # GIVEN bus and SNS delivered, the webhook failed
    n = after_attempt(
        notice(),
        {Channel.BUS: ChannelState.SENT, Channel.SNS: ChannelState.SENT},
        now=NOW,
        error="webhook: 503",
        max_attempts=5,
    )
    # THEN only the webhook is pending, after a backoff
    assert n.pending == [Channel.WEBHOOK]
    assert n.attempts == 1
    assert n.last_error == "webhook: 503"
    assert n.lease_until == NOW + retry_delay(1)
    # AND nobody can take it before the backoff ends
    assert take_lease(n, NOW + timedelta(seconds=1), LEASE, "second") is None
    taken = take_lease(n, n.lease_until + timedelta(seconds=1), LEASE, "second")
    assert taken is not None
    assert taken.lease_until > n.lease_until
    assert taken.lease_owner == "second"
    assert taken.takeovers == 0  # the first attempt released its lease: a retry, not a takeover


def test_gives_up_after_max_attempts() -> None:
    n = notice()
    for _ in range(3):
        n = after_attempt(n, {}, now=NOW, error="down", max_attempts=3)
    assert n.done
    assert set(n.channels.values()) == {ChannelState.FAILED}


def test_done_notice_is_not_leased_again() -> None:
    n = after_attempt(notice(), dict.fromkeys(Channel, ChannelState.SENT), now=NOW, error=None, max_attempts=3)
    assert n.done
    assert n.attempts == 0
    assert take_lease(n, NOW + timedelta(days=1), LEASE, "second") is None


def test_retry_delay_grows_and_is_capped() -> None:
    assert retry_delay(1) < retry_delay(2) < retry_delay(3)
    assert retry_delay(50) == timedelta(seconds=600)


def test_the_fence_holds_the_notice_for_a_whole_send() -> None:
    # GIVEN a notice opened by "first" with a 60 s lease
    n = notice()
    # WHEN "first" fences before a send at 50 s, holding it for the send's 30 s deadline plus the lease
    held = fence(n, NOW + timedelta(seconds=50), timedelta(seconds=90), "first")
    assert held is not None
    # THEN nobody can take it until the send's deadline and the lease after it have passed
    assert held.lease_until == NOW + timedelta(seconds=140)
    assert take_lease(held, NOW + timedelta(seconds=139), LEASE, "second") is None
    assert take_lease(held, NOW + timedelta(seconds=140), LEASE, "second") is not None
    # AND a fence never shortens what is held
    again = fence(held, NOW, timedelta(seconds=1), "first")
    assert again is not None
    assert again.lease_until == held.lease_until


def test_ownership_decides_the_fence_not_the_clock() -> None:
    n = notice()
    lapsed = NOW + LEASE + timedelta(seconds=1)
    # GIVEN a lease that lapsed while nobody took it over: its holder may still go on
    assert fence(n, lapsed, LEASE, "first") is not None
    # AND nobody else can fence it
    assert fence(n, NOW, LEASE, "someone-else") is None
    # WHEN another worker takes it over
    taken = take_lease(n, lapsed, LEASE, "second")
    assert taken is not None
    # THEN the first holder is fenced off, the new one is not
    assert fence(taken, lapsed, LEASE, "first") is None
    assert fence(taken, lapsed, LEASE, "second") is not None
    # AND taking a lease its holder never released is counted (a repeat of a pending channel is possible then)
    assert taken.takeovers == 1
    # AND a delivered notice is fenced off for everyone
    done = after_attempt(taken, dict.fromkeys(Channel, ChannelState.SENT), now=lapsed, error=None, max_attempts=3)
    assert fence(done, lapsed, LEASE, "second") is None


def test_a_channel_is_ticked_off_once_and_stays_ticked_off() -> None:
    n = tick_off(notice(), Channel.BUS, ChannelState.SENT)
    assert n is not None
    assert n.pending == [Channel.SNS, Channel.WEBHOOK]
    assert tick_off(n, Channel.BUS, ChannelState.SENT) is None
    assert tick_off(n, Channel.SNS, ChannelState.PENDING) is None
    # AND the end of the attempt does not undo a tick (whatever the attempt's own outcomes say)
    ended = after_attempt(n, {Channel.BUS: ChannelState.FAILED}, now=NOW, error="x", max_attempts=5)
    assert ended.channels[Channel.BUS] == ChannelState.SENT
    assert ended.lease_owner is None


def test_every_channel_of_a_new_notice_is_pending_and_leased_to_its_opener() -> None:
    n = notice()
    assert n.pending == [Channel.BUS, Channel.SNS, Channel.WEBHOOK]
    assert n.lease_owner == "first"
    assert n.lease_until == NOW + LEASE


def test_a_failed_channel_is_retried_after_the_base_delay_doubling_per_attempt() -> None:
    # GIVEN a notice whose webhook keeps failing, retried with a base delay of 5 s
    n, waits = notice(), []
    for _ in range(4):
        n = after_attempt(n, {}, now=NOW, error="webhook: 503", max_attempts=10, retry_base_s=5.0)
        waits.append((n.lease_until - NOW).total_seconds())
    # THEN the attempts come 5, 10, 20 and 40 s apart, and never more than 10 minutes
    assert waits == [5, 10, 20, 40]
    assert retry_delay(30, base_s=5.0) == timedelta(minutes=10)


def test_the_end_of_an_attempt_and_a_tick_leave_the_given_notice_as_it_was() -> None:
    # GIVEN a stored notice (the store retries an update from it when a concurrent writer won)
    n = notice()
    stored = n.model_dump()
    # WHEN an attempt ends with outcomes and a channel is ticked off
    ended = after_attempt(n, {Channel.BUS: ChannelState.SENT}, now=NOW, error="sns: down", max_attempts=5)
    ticked = tick_off(n, Channel.SNS, ChannelState.SENT)
    # THEN the new notices carry the changes and the given one is untouched
    assert ended.channels[Channel.BUS] is ChannelState.SENT
    assert ticked is not None
    assert ticked.channels[Channel.SNS] is ChannelState.SENT
    assert n.model_dump() == stored


def test_a_lease_ends_at_its_deadline_for_its_holder_and_others_alike() -> None:
    # GIVEN a lease held until NOW + LEASE
    n = notice()
    end = n.lease_until
    # THEN just before, nobody else may take it; at the deadline another may take it
    assert take_lease(n, end - timedelta(microseconds=1), LEASE, "second") is None
    assert take_lease(n, end, LEASE, "second") is not None


def test_the_last_error_kept_is_cut_short() -> None:
    n = after_attempt(notice(), {}, now=NOW, error="x" * 10_000, max_attempts=5)
    assert n.last_error is not None
    assert 0 < len(n.last_error) < 1000
