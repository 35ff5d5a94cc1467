from datetime import UTC, datetime, timedelta

import pytest

from seqferry_notifier.domain.executions import (
    HISTORY_LIMIT,
    Observation,
    Source,
    datasync_arn,
    execution_key,
    fold,
    note_describe,
    parse_state,
)
from seqferry_shared.events.models import Counters, ErrorInfo, TransferState

T0 = datetime(2025, 11, 25, 9, 0, tzinfo=UTC)
ARN = "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890/execution/exec-0123456789abcdef0"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obs(state: TransferState | None, seconds: float, source: Source = Source.EXECUTOR, **kw: object) -> Observation:
    return Observation(execution_id=kw.pop("execution_id", "exec-1"), at=at(seconds), source=source, state=state, **kw)


def test_arn_and_bare_id_share_a_key() -> None:
    # GIVEN a DataSync execution ARN and its bare id with the task ARN
    task = ARN.split("/execution/", maxsplit=1)[0]
    # THEN both name the same execution and the ARN is recovered from the bare id
    assert execution_key(ARN) == execution_key("exec-0123456789abcdef0") == "exec-0123456789abcdef0"
    assert datasync_arn("exec-0123456789abcdef0", task) == ARN
    assert datasync_arn("local-42", "sequencers") is None
    assert execution_key("local-42") == "local-42"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SUCCESS", TransferState.SUCCESS),
        ("transferring", TransferState.TRANSFERRING),
        ("INITIALIZING", TransferState.LAUNCHING),
        ("BOGUS", None),
        (None, None),
    ],
)
def test_parse_state(raw: object, expected: TransferState | None) -> None:
    assert parse_state(raw) == expected


def test_states_move_forward_and_terminal_is_final() -> None:
    # GIVEN an execution seen transferring
    first = fold(None, obs(TransferState.TRANSFERRING, 10))
    assert first.changed
    assert first.state_changed
    assert first.became_terminal is None
    # WHEN an older, earlier state arrives late
    late = fold(first.record, obs(TransferState.LAUNCHING, 5))
    # THEN the state does not go back
    assert late.record.state == TransferState.TRANSFERRING
    assert not late.state_changed
    # WHEN success arrives, then a stray non-terminal and a conflicting terminal state
    done = fold(late.record, obs(TransferState.SUCCESS, 20))
    assert done.became_terminal == TransferState.SUCCESS
    assert done.record.finished_at == at(20)
    stray = fold(done.record, obs(TransferState.VERIFYING, 30, Source.DATASYNC_EVENT))
    conflicting = fold(stray.record, obs(TransferState.ERROR, 31, Source.DATASYNC_EVENT))
    # THEN the first terminal state stands and terminal is reported only once
    assert conflicting.record.state == TransferState.SUCCESS
    assert stray.became_terminal is None
    assert conflicting.became_terminal is None


def test_redelivered_observation_changes_nothing() -> None:
    o = obs(TransferState.TRANSFERRING, 10, counters=Counters(files_transferred=3, bytes_transferred=30))
    once = fold(None, o)
    twice = fold(once.record, o)
    assert not twice.changed
    assert twice.record == once.record
    assert len(twice.record.history) == 1


def test_counters_come_from_the_newest_observation() -> None:
    # GIVEN counters at t=20
    r = fold(None, obs(TransferState.TRANSFERRING, 20, counters=Counters(files_transferred=8))).record
    # WHEN older counters arrive late (t=10) and a DataSync event without counters comes (t=30)
    r = fold(r, obs(TransferState.TRANSFERRING, 10, counters=Counters(files_transferred=2))).record
    r = fold(r, obs(TransferState.VERIFYING, 30, Source.DATASYNC_EVENT)).record
    # THEN the newest counters stand
    assert r.counters.files_transferred == 8
    assert r.state == TransferState.VERIFYING
    # AND history holds the transitions with the counters at that time
    assert [(h.state, h.files_transferred) for h in r.history] == [
        (TransferState.TRANSFERRING, 8),
        (TransferState.VERIFYING, 8),
    ]


def test_error_is_kept_with_the_error_state() -> None:
    err = ErrorInfo(code="VerificationFailed", message="checksum mismatch")
    r = fold(None, obs(TransferState.TRANSFERRING, 1)).record
    result = fold(r, obs(TransferState.ERROR, 2, error=err))
    assert result.became_terminal == TransferState.ERROR
    assert result.record.error == err


def test_metadata_merges_from_all_sources() -> None:
    # GIVEN a DataSync event (ARN, no counters) and then the executor's event (task name, runs, trigger)
    r = fold(
        None,
        Observation(
            execution_id=ARN,
            arn=ARN,
            at=at(1),
            source=Source.DATASYNC_EVENT,
            state=TransferState.LAUNCHING,
            backend="datasync",
        ),
    ).record
    r = fold(
        r,
        obs(
            TransferState.TRANSFERRING,
            2,
            execution_id=ARN,
            task="sequencers",
            run_ids=("RUN_A", "RUN_B"),
            started_at=at(0),
            correlation_id="window-1",
        ),
    ).record
    r = fold(
        r, obs(TransferState.TRANSFERRING, 3, execution_id="exec-0123456789abcdef0", run_ids=("RUN_B", "RUN_C"))
    ).record
    # THEN one record knows everything
    assert r.execution_id == "exec-0123456789abcdef0"
    assert r.arn == ARN
    assert r.backend == "datasync"
    assert r.task == "sequencers"
    assert r.run_ids == ["RUN_A", "RUN_B", "RUN_C"]
    assert r.started_at == at(0)
    assert r.correlation_id == "window-1"
    assert r.sources == [Source.DATASYNC_EVENT, Source.EXECUTOR]
    assert r.pollable


def test_history_is_bounded_and_keeps_transitions() -> None:
    r = fold(None, obs(TransferState.TRANSFERRING, 0)).record
    for i in range(1, HISTORY_LIMIT + 50):
        r = fold(r, obs(TransferState.TRANSFERRING, i, counters=Counters(files_transferred=i))).record
    r = fold(r, obs(TransferState.SUCCESS, 1000, counters=Counters(files_transferred=500))).record
    assert len(r.history) == HISTORY_LIMIT
    assert r.history[0].transition
    assert r.history[0].state == TransferState.TRANSFERRING
    assert r.history[-1].state == TransferState.SUCCESS


def test_unreconcilable_execution_is_no_longer_polled() -> None:
    r = fold(
        None, Observation(execution_id=ARN, at=at(0), source=Source.DATASYNC_EVENT, state=TransferState.TRANSFERRING)
    ).record
    assert r.pollable
    r = note_describe(r, at(1), error="InvalidRequestException: not found", not_found=True)
    assert not r.pollable
    assert r.reconcile.failures == 1
    assert r.reconcile.describes == 1
