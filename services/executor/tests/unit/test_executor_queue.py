"""The per-task queue: arrival order, coalescing of windows, parts, start leases. Pure, fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seqferry_executor.domain.queue import (
    QueueError,
    StartOrder,
    TaskQueue,
    WorkKind,
    enqueue,
    next_start,
    part_done,
    started,
)
from seqferry_shared.patterns import FILTER_VALUE_LIMIT

NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
DAY1 = ("/sequencers/incoming/miseq/241125*", "/adhoc")
DAY2 = ("/sequencers/incoming/miseq/241126*", "/sequencers/incoming/miseq/241125*", "/adhoc")


def add(queue: TaskQueue, kind: WorkKind, ref: str, includes: tuple[str, ...] = DAY1) -> TaskQueue:
    return enqueue(queue, kind=kind, ref=ref, includes=includes, correlation_id=f"c-{ref}", now=NOW).queue


def start(queue: TaskQueue, execution_id: str, owner: str = "me") -> tuple[TaskQueue, StartOrder]:
    leased, order = next_start(queue, owner=owner, now=NOW, lease=LEASE)
    assert order is not None
    return started(leased, order, execution_id), order


def running(execution_id: str = "exec-1") -> TaskQueue:
    queue, _ = start(add(TaskQueue("sequencers"), WorkKind.WINDOW, "1"), execution_id)
    return queue


def test_first_item_starts_at_once_with_its_patterns():
    queue = add(TaskQueue("sequencers"), WorkKind.REQUEST, "r1")

    leased, order = next_start(queue, owner="me", now=NOW, lease=LEASE)

    assert order is not None
    assert (order.seq, order.part, order.parts, order.includes) == (1, 0, 1, DAY1)
    assert leased.active is not None
    assert leased.active.starting
    assert leased.active.lease_owner == "me"


def test_windows_during_an_execution_fold_into_one_pending_window():
    # GIVEN a window execution running
    queue = running()

    # WHEN three more windows arrive, the newest with a new date
    results = []
    for tick, includes in (("2", DAY1), ("3", DAY1), ("4", DAY2)):
        result = enqueue(queue, kind=WorkKind.WINDOW, ref=tick, includes=includes, correlation_id=tick, now=NOW)
        results.append(result.outcome)
        queue = result.queue

    # THEN one pending item holds every date asked for; nothing new starts while the execution runs
    assert results == ["queued", "coalesced", "coalesced"]
    assert len(queue.pending) == 1
    pending = queue.pending[0]
    assert pending.refs == ("2", "3", "4")
    assert set(pending.includes) == set(DAY1) | set(DAY2)
    assert len(pending.includes) == 3
    assert next_start(queue, owner="me", now=NOW, lease=LEASE) == (queue, None)


def test_exactly_one_follow_up_after_the_running_execution_ends():
    queue = running()
    for tick in ("2", "3", "4"):
        queue = add(queue, WorkKind.WINDOW, tick, DAY2)

    # WHEN the running execution ends
    queue = part_done(queue, seq=1, part=0)
    queue, order = start(queue, "exec-2")

    # THEN the folded window starts, and after it nothing is left
    assert order.item.refs == ("2", "3", "4")
    queue = part_done(queue, seq=order.seq, part=0)
    assert queue.items == ()
    assert next_start(queue, owner="me", now=NOW, lease=LEASE)[1] is None


def test_requests_queue_in_arrival_order_and_are_never_merged():
    queue = running()
    queue = add(queue, WorkKind.REQUEST, "r1")
    queue = add(queue, WorkKind.WINDOW, "2")
    queue = add(queue, WorkKind.REQUEST, "r2")
    queue = add(queue, WorkKind.WINDOW, "3")  # folds into window 2, keeping its place before r2

    order_of_refs = []
    queue = part_done(queue, seq=1, part=0)
    while queue.items:
        queue, order = start(queue, f"exec-{len(order_of_refs) + 2}")
        order_of_refs.append(order.item.refs)
        queue = part_done(queue, seq=order.seq, part=0)

    assert order_of_refs == [("r1",), ("2", "3"), ("r2",)]


def test_a_window_never_folds_into_the_running_one():
    queue = running()

    result = enqueue(queue, kind=WorkKind.WINDOW, ref="2", includes=DAY2, correlation_id="2", now=NOW)

    assert result.outcome == "queued"
    assert queue.item(1).includes == DAY1


@pytest.mark.parametrize("kind", [WorkKind.WINDOW, WorkKind.REQUEST])
def test_the_same_ref_twice_is_a_duplicate(kind: WorkKind):
    queue = add(TaskQueue("sequencers"), kind, "x")

    result = enqueue(queue, kind=kind, ref="x", includes=DAY2, correlation_id="x", now=NOW)

    assert result.outcome == "duplicate"
    assert result.queue is queue


def test_patterns_over_one_filter_value_run_as_parts_without_cutting_a_pattern():
    # GIVEN patterns whose joined value is 102,400 + 1 characters
    patterns = [f"/sequencers/incoming/miseq/{i:06d}_M00001_0001_000000000-AAAAA{'x' * 40}" for i in range(1200)]
    while len("|".join(patterns)) > FILTER_VALUE_LIMIT + 1:
        patterns.pop()
    shortfall = FILTER_VALUE_LIMIT + 1 - len("|".join(patterns))
    patterns[-1] += "y" * shortfall
    assert len("|".join(patterns)) == FILTER_VALUE_LIMIT + 1
    queue = add(TaskQueue("sequencers"), WorkKind.REQUEST, "big", tuple(patterns))

    # WHEN it runs
    queue, first = start(queue, "exec-1")
    queue = part_done(queue, seq=first.seq, part=0)
    queue, second = start(queue, "exec-2")
    queue = part_done(queue, seq=second.seq, part=1)

    # THEN two parts, each within the limit, every pattern whole and in order, then the item is done
    assert (first.parts, second.parts) == (2, 2)
    assert (first.part, second.part) == (0, 1)
    assert all(len("|".join(o.includes)) <= FILTER_VALUE_LIMIT for o in (first, second))
    assert list(first.includes + second.includes) == patterns
    assert queue.items == ()


def test_start_lease_keeps_a_second_replica_out_until_it_expires():
    queue = add(TaskQueue("sequencers"), WorkKind.REQUEST, "r1")
    leased, _ = next_start(queue, owner="a", now=NOW, lease=LEASE)

    assert next_start(leased, owner="b", now=NOW + timedelta(minutes=1), lease=LEASE)[1] is None
    _, order = next_start(leased, owner="a", now=NOW + timedelta(minutes=1), lease=LEASE)
    assert order is not None
    taken, order = next_start(leased, owner="b", now=NOW + LEASE + timedelta(seconds=1), lease=LEASE)
    assert order is not None
    assert taken.active is not None
    assert taken.active.lease_owner == "b"


def test_stale_transitions_are_refused():
    queue = running()
    _, order = next_start(add(TaskQueue("sequencers"), WorkKind.REQUEST, "r"), owner="me", now=NOW, lease=LEASE)
    assert order is not None

    with pytest.raises(QueueError):
        started(queue, order, "exec-2")
    with pytest.raises(QueueError):
        part_done(queue, seq=1, part=1)
    with pytest.raises(ValueError, match="include"):
        enqueue(queue, kind=WorkKind.REQUEST, ref="empty", includes=(), correlation_id="e", now=NOW)
