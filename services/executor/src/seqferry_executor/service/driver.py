"""The driver: takes each task's queued work to its end — starts parts, follows executions, emits their states.

Each task is driven by one step machine (``_drive_locked``), entered under a per-task lock by the intake (after
queueing work) and by the poller (:meth:`Driver.poll_once`, a periodic round of the runtime). One step reads the
task's queue from the state table and does at most one thing: follow the running execution (describe it, emit a
state change, move on when it ends), or start the next part (take the start lease, call the backend, record the
execution id). Everything it decides from is persisted, so a restarted executor resumes exactly where the previous
one stopped: parts that were starting are started, executions that were running are followed to their end and
their events emitted.

Order of effects when a state changes: publish, then record. A crash in between republishes the same change
with the same event id on the next poll, which consumers deduplicate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from opentelemetry import trace as otel_trace
from opentelemetry.metrics import Meter

from seqferry_executor.backends.base import BackendError, ExecutionStatus, TransferBackend
from seqferry_executor.domain.executions import ExecutionRecord, StateSeen, observe, state_event
from seqferry_executor.domain.queue import QueueError, StartOrder, TaskQueue, WorkKind, next_start, part_done, started
from seqferry_executor.store import StateStore, VersionConflictError
from seqferry_shared.events.models import ErrorInfo, TransferState, Trigger
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.patterns import FILTER_VALUE_LIMIT
from seqferry_shared.telemetry import attach, detach, extract

log = logging.getLogger(__name__)

MAX_STEPS = 16
MAX_CONFLICT_RETRIES = 8

Clock = Callable[[], datetime]

_TRACER = otel_trace.get_tracer("seqferry.executor")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Backoff:
    attempts: int
    not_before: float
    last_error: str


class Driver:
    def __init__(
        self,
        *,
        backend: TransferBackend,
        store: StateStore,
        publisher: EventPublisher,
        owner: str,
        start_lease: timedelta = timedelta(minutes=5),
        retry_base_s: float = 2.0,
        retry_max_s: float = 300.0,
        filter_limit: int = FILTER_VALUE_LIMIT,
        clock: Clock = utc_now,
        meter: Meter | None = None,
    ) -> None:
        self._backend = backend
        self._store = store
        self._publisher = publisher
        self._owner = owner
        self._lease = start_lease
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._limit = filter_limit
        self._clock = clock
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._attached: set[str] = set()
        self._backoff: dict[str, _Backoff] = {}
        self._tasks: set[str] = set()
        self._states = (
            meter.create_counter(
                "seqferry_execution_states", description="Execution state changes emitted, by backend and state"
            )
            if meter is not None
            else None
        )

    @property
    def backend_name(self) -> Literal["datasync", "local"]:
        return "datasync" if self._backend.name == "datasync" else "local"

    def lock(self, task: str) -> asyncio.Lock:
        """The task's lock: one step machine at a time per task in this process. Taking it, a caller tells the
        driver about the task (the poller drives it from then on)."""
        self._tasks.add(task)
        return self._locks[task]

    async def drive_locked(self, task: str) -> None:
        """Drive ``task`` as far as it goes now; the caller holds :meth:`lock`. A failure is logged, and the
        poller drives the task again on its next round."""
        await self._drive_logged(task)

    async def poll_once(self) -> None:
        """One round of the poller (the runtime runs it every ``poll_interval``): drive every known task."""
        self._tasks.update(await self._store.list_tasks())
        await asyncio.gather(*(self._drive(task) for task in sorted(self._tasks)))

    async def _drive(self, task: str) -> None:
        async with self._locks[task]:
            await self._drive_logged(task)

    async def _drive_logged(self, task: str) -> None:
        try:
            await self._drive_locked(task)
        except (VersionConflictError, QueueError) as exc:
            # Another replica changed the queue first (queued work, or moved past the same part).
            log.info("%s; deciding again on fresh state", exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s: step failed; retried on the next poll", task)

    async def _drive_locked(self, task: str) -> None:
        for _ in range(MAX_STEPS):
            queue = await self._store.load_queue(task)
            active = queue.active
            if active is not None and not active.starting:
                if not await self._follow(queue):
                    return
                continue
            if not self._start_due(task):
                return
            leased, order = next_start(
                queue, owner=self._owner, now=self._clock(), lease=self._lease, limit=self._limit
            )
            if order is None:
                return
            queue = await self._store.save_queue(queue, leased)
            await self._start(queue, order)

    async def _transition(self, queue: TaskQueue, change: Callable[[TaskQueue], TaskQueue]) -> TaskQueue:
        """Apply ``change`` and save; on a conflict (another replica queued work meanwhile), re-apply it to the
        fresh queue. Used after a side effect (an execution started or ended) that must not be forgotten."""
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return await self._store.save_queue(queue, change(queue))
            except VersionConflictError:
                queue = await self._store.load_queue(queue.task)
        raise VersionConflictError(f"task {queue.task}: queue kept changing; transition not saved")

    def _start_due(self, task: str) -> bool:
        backoff = self._backoff.get(task)
        return backoff is None or time.monotonic() >= backoff.not_before

    def _back_off(self, task: str, error: str) -> None:
        previous = self._backoff.get(task)
        attempts = previous.attempts + 1 if previous else 1
        delay = min(self._retry_max_s, self._retry_base_s * 2 ** (attempts - 1))
        delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        self._backoff[task] = _Backoff(attempts, time.monotonic() + delay, error)
        log.warning("task %s: start failed (attempt %d: %s); retrying in %.1f s", task, attempts, error, delay)

    async def _start(self, queue: TaskQueue, order: StartOrder) -> None:
        task = order.task
        try:
            execution_id = await self._backend.start(task, order.includes)
        except BackendError as exc:
            if exc.retryable:
                self._back_off(task, f"{exc.code}: {exc.message}")
                return
            await self._refused(queue, order, exc)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an unexpected failure is retried like a throttle, never lost
            log.exception("task %s: backend start raised", task)
            self._back_off(task, f"{type(exc).__name__}: {exc}")
            return
        self._backoff.pop(task, None)
        now = self._clock()
        record = self._record(order, execution_id, now)
        await self._store.put_execution(record)
        await self._transition(queue, lambda q: started(q, order, execution_id))
        self._attached.add(execution_id)
        log.info("task %s: execution %s started (part %d/%d)", task, execution_id, order.part + 1, order.parts)
        if order.item.kind is WorkKind.REQUEST:
            await self._store.add_request_execution(order.item.ref, execution_id)

    def _record(self, order: StartOrder, execution_id: str, now: datetime) -> ExecutionRecord:
        item = order.item
        return ExecutionRecord(
            execution_id=execution_id,
            backend=self.backend_name,
            task=order.task,
            trigger=Trigger(kind=item.kind.value, id=item.ref),
            correlation_id=item.correlation_id,
            seq=order.seq,
            part=order.part,
            parts=order.parts,
            includes=list(order.includes),
            started_at=now,
            updated_at=now,
            trace=dict(item.trace),
        )

    async def _refused(self, queue: TaskQueue, order: StartOrder, exc: BackendError) -> None:
        """The backend refused the part for good: record and emit it as ERROR, then move on."""
        self._backoff.pop(order.task, None)
        now = self._clock()
        execution_id = f"refused-{uuid.uuid4().hex}"
        record = self._record(order, execution_id, now).model_copy(
            update={
                "state": TransferState.ERROR,
                "error": ErrorInfo(code=exc.code, message=exc.message),
                "ended_at": now,
                "history": [StateSeen(state=TransferState.ERROR, at=now)],
            }
        )
        log.error("task %s: backend refused part %d/%d: %s", order.task, order.part + 1, order.parts, exc)
        await self._emit(record)
        await self._store.put_execution(record)
        await self._transition(queue, lambda q: part_done(q, seq=order.seq, part=order.part))
        if order.item.kind is WorkKind.REQUEST:
            await self._store.add_request_execution(order.item.ref, execution_id)

    async def _follow(self, queue: TaskQueue) -> bool:
        """Describe the running execution, emit a state change; True once it ended and the queue moved on."""
        active = queue.active
        assert active is not None
        assert active.execution_id is not None
        execution_id = active.execution_id
        record = await self._store.get_execution(execution_id)
        if record is None:  # the record write was lost after the start was recorded: rebuild it
            item = queue.item(active.seq)
            order = StartOrder(
                queue.task, item.seq, active.part, active.parts, item.parts(self._limit)[active.part], item
            )
            record = self._record(order, execution_id, self._clock())
        if execution_id not in self._attached:
            await self._backend.resume(execution_id, queue.task, record.includes)
            self._attached.add(execution_id)
            log.info("task %s: following execution %s after a restart", queue.task, execution_id)
        if not record.terminal:
            status = await self._status(execution_id)
            if status is None:
                return False
            updated, changed = observe(
                record,
                state=status.state,
                counters=status.counters,
                runs=status.runs,
                error=status.error,
                now=self._clock(),
                problems=status.problems,
            )
            if changed:
                await self._emit(updated)
            if updated is not record:
                await self._store.put_execution(updated)
            if not updated.terminal:
                return False
            record = updated
        await self._transition(queue, lambda q: part_done(q, seq=active.seq, part=active.part))
        self._attached.discard(execution_id)
        log.info("task %s: execution %s ended %s", queue.task, execution_id, record.state)
        return True

    async def _status(self, execution_id: str) -> ExecutionStatus | None:
        try:
            return await self._backend.describe(execution_id)
        except BackendError as exc:
            if exc.retryable:
                log.warning("describe %s: %s; retried on the next poll", execution_id, exc)
                return None
            # The backend no longer knows the execution (or never will): it ended, in error.
            return ExecutionStatus(state=TransferState.ERROR, error=ErrorInfo(code=exc.code, message=exc.message))

    async def _emit(self, record: ExecutionRecord) -> None:
        # Continue the trace of the event that caused this execution, across restarts and polling loops.
        token = attach(extract(record.trace))
        try:
            state = record.state.value if record.state else "?"
            with _TRACER.start_as_current_span(f"execution {state}", kind=otel_trace.SpanKind.PRODUCER):
                await self._emit_in_trace(record)
        finally:
            detach(token)

    async def _emit_in_trace(self, record: ExecutionRecord) -> None:
        try:
            event = state_event(record)
            self._publisher.entry(event)
        except ValueError:
            # Over EventBridge's entry size: the full pattern list stays in the execution record.
            event = state_event(record, with_includes=False)
        await self._publisher.publish(event)
        if self._states is not None and record.state is not None:
            self._states.add(1, {"backend": record.backend, "state": record.state.value})
        log.info("execution %s: %s", record.execution_id, record.state)

    # -- views ------------------------------------------------------------------------------------------------
    async def queues(self) -> list[TaskQueue]:
        self._tasks.update(await self._store.list_tasks())
        return [await self._store.load_queue(task) for task in sorted(self._tasks)]

    async def in_flight(self) -> list[ExecutionRecord]:
        records = []
        for queue in await self.queues():
            if queue.active is not None and queue.active.execution_id is not None:
                record = await self._store.get_execution(queue.active.execution_id)
                if record is not None:
                    records.append(record)
        return records

    def backoff_of(self, task: str) -> str | None:
        backoff = self._backoff.get(task)
        return backoff.last_error if backoff else None
