"""Per-task queue of pending work: what runs now, what runs next, and how windows coalesce.

Rules (the same for every backend):

- A task runs one execution at a time. DataSync itself runs one execution per task and would queue or refuse
  more; the local engine has one active pass per task.
- Work items run in arrival order. A ``Transfer Requested`` is its own item, never merged with another.
- A window that arrives while an earlier window is still *pending* (not yet started) is folded into it: the
  pending window's include patterns become the union of both. So whatever number of windows arrive during a
  long execution, exactly one follow-up execution runs when it ends, and it covers every date any of them asked
  for (no window is lost, none is stacked).
- An item whose patterns do not fit one filter value is run as several parts, one after the other; a pattern
  is never cut (:func:`seqferry_shared.patterns.split_filter`).
- Starting an execution is two steps: the part is marked *starting* under a short lease (so two replicas never
  start the same part), then the backend's execution id is recorded. A part whose start failed with a retryable
  error stays *starting* and is retried; a refused part is skipped (the refusal is recorded by the caller).

Everything here is pure: a transition takes a :class:`TaskQueue` and returns a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from seqferry_shared.patterns import FILTER_VALUE_LIMIT, split_filter


class WorkKind(StrEnum):
    WINDOW = "window"
    REQUEST = "request"


@dataclass(frozen=True, slots=True)
class WorkItem:
    seq: int
    """Arrival order within the task."""
    kind: WorkKind
    ref: str
    """Window tick or request id of the first event behind this item."""
    includes: tuple[str, ...]
    correlation_id: str
    arrived_at: datetime
    folded: tuple[str, ...] = ()
    """Refs of later windows folded into this one."""
    trace: tuple[tuple[str, str], ...] = ()
    """W3C trace context of the event that created the item, so its executions continue that trace."""

    def parts(self, limit: int = FILTER_VALUE_LIMIT) -> list[tuple[str, ...]]:
        return [tuple(group) for group in split_filter(self.includes, limit)]

    @property
    def refs(self) -> tuple[str, ...]:
        return (self.ref, *self.folded)


@dataclass(frozen=True, slots=True)
class Active:
    """The item at the head of the queue, and which of its parts runs."""

    seq: int
    part: int
    parts: int
    execution_id: str | None = None
    """None while the part is starting (not yet accepted by the backend)."""
    lease_owner: str | None = None
    lease_until: datetime | None = None

    @property
    def starting(self) -> bool:
        return self.execution_id is None


@dataclass(frozen=True, slots=True)
class TaskQueue:
    task: str
    version: int = 0
    next_seq: int = 1
    active: Active | None = None
    items: tuple[WorkItem, ...] = field(default_factory=tuple)

    def item(self, seq: int) -> WorkItem:
        for item in self.items:
            if item.seq == seq:
                return item
        raise KeyError(f"task {self.task}: no work item {seq}")

    @property
    def pending(self) -> tuple[WorkItem, ...]:
        """Items waiting to start (the active one excluded)."""
        active_seq = self.active.seq if self.active else None
        return tuple(i for i in self.items if i.seq != active_seq)

    def knows(self, kind: WorkKind, ref: str) -> bool:
        return any(i.kind is kind and ref in i.refs for i in self.items)


Outcome = Literal["queued", "coalesced", "duplicate"]


@dataclass(frozen=True, slots=True)
class Enqueued:
    queue: TaskQueue
    outcome: Outcome
    seq: int


@dataclass(frozen=True, slots=True)
class StartOrder:
    """Start part ``part`` of item ``seq`` with these patterns."""

    task: str
    seq: int
    part: int
    parts: int
    includes: tuple[str, ...]
    item: WorkItem


class QueueError(RuntimeError):
    """A transition does not apply to the queue as it is (stale caller); reload and decide again."""


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    merged = list(first)
    seen = set(first)
    for pattern in second:
        if pattern not in seen:
            seen.add(pattern)
            merged.append(pattern)
    return tuple(merged)


def enqueue(
    queue: TaskQueue,
    *,
    kind: WorkKind,
    ref: str,
    includes: tuple[str, ...],
    correlation_id: str,
    now: datetime,
    trace: tuple[tuple[str, str], ...] = (),
) -> Enqueued:
    """Add work; a window folds into a pending window; a ref seen before is a duplicate."""
    if not includes:
        raise ValueError("a work item needs at least one include pattern")
    if queue.knows(kind, ref):
        existing = next(i for i in queue.items if i.kind is kind and ref in i.refs)
        return Enqueued(queue, "duplicate", existing.seq)
    if kind is WorkKind.WINDOW:
        waiting = next((i for i in queue.pending if i.kind is WorkKind.WINDOW), None)
        if waiting is not None:
            merged = replace(waiting, includes=_union(waiting.includes, includes), folded=(*waiting.folded, ref))
            items = tuple(merged if i.seq == waiting.seq else i for i in queue.items)
            return Enqueued(replace(queue, items=items), "coalesced", waiting.seq)
    item = WorkItem(
        seq=queue.next_seq,
        kind=kind,
        ref=ref,
        includes=includes,
        correlation_id=correlation_id,
        arrived_at=now,
        trace=trace,
    )
    return Enqueued(replace(queue, next_seq=queue.next_seq + 1, items=(*queue.items, item)), "queued", item.seq)


def next_start(
    queue: TaskQueue, *, owner: str, now: datetime, lease: timedelta, limit: int = FILTER_VALUE_LIMIT
) -> tuple[TaskQueue, StartOrder | None]:
    """If a part should start now, take the start lease for ``owner`` and say what to start."""
    active = queue.active
    if active is None:
        if not queue.items:
            return queue, None
        head = queue.items[0]
        active = Active(seq=head.seq, part=0, parts=len(head.parts(limit)))
    elif not active.starting:
        return queue, None
    elif active.lease_owner not in (None, owner) and active.lease_until is not None and active.lease_until > now:
        return queue, None  # another replica is starting this part
    item = queue.item(active.seq)
    active = replace(active, lease_owner=owner, lease_until=now + lease)
    order = StartOrder(
        task=queue.task,
        seq=item.seq,
        part=active.part,
        parts=active.parts,
        includes=item.parts(limit)[active.part],
        item=item,
    )
    return replace(queue, active=active), order


def started(queue: TaskQueue, order: StartOrder, execution_id: str) -> TaskQueue:
    """The backend accepted the part: remember its execution id."""
    active = queue.active
    if active is None or active.seq != order.seq or active.part != order.part or not active.starting:
        raise QueueError(f"task {queue.task}: part {order.seq}/{order.part} is not starting")
    return replace(
        queue, active=Active(seq=active.seq, part=active.part, parts=active.parts, execution_id=execution_id)
    )


def part_done(queue: TaskQueue, *, seq: int, part: int) -> TaskQueue:
    """The active part ended (any terminal state) or was refused: move to the next part or the next item."""
    active = queue.active
    if active is None or active.seq != seq or active.part != part:
        raise QueueError(f"task {queue.task}: part {seq}/{part} is not the active one")
    if part + 1 < active.parts:
        return replace(queue, active=Active(seq=seq, part=part + 1, parts=active.parts))
    return replace(queue, active=None, items=tuple(i for i in queue.items if i.seq != seq))
