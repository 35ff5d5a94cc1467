from datetime import UTC, datetime, timedelta

from seqferry_notifier.domain.notices import (
    Channel,
    ChannelState,
    after_attempt,
    new_notice,
    retry_delay,
    take_lease,
)
from seqferry_notifier.domain.notifications import NoticeKind, Notification

NOW = datetime(2025, 11, 25, tzinfo=UTC)
LEASE = timedelta(seconds=60)
NOTE = Notification(kind=NoticeKind.RUN_COMPLETED, subject="s", text="t", fields={})


def notice(webhook: bool = True):
    return new_notice(
        pk="run#R",
        sk="notice#completed",
        notification=NOTE,
        now=NOW,
        lease=LEASE,
        webhook=webhook,
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
    assert take_lease(n, NOW + timedelta(seconds=1), LEASE) is None
    taken = take_lease(n, n.lease_until + timedelta(seconds=1), LEASE)
    assert taken is not None
    assert taken.lease_until > n.lease_until


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
    assert take_lease(n, NOW + timedelta(days=1), LEASE) is None


def test_retry_delay_grows_and_is_capped() -> None:
    assert retry_delay(1) < retry_delay(2) < retry_delay(3)
    assert retry_delay(50) == timedelta(seconds=600)
