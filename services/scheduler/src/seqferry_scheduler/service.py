"""The tick loop: at every interval boundary, claim the tick per task and publish its ``Transfer Window Opened``.

Replicas race for each tick with a conditional write (:class:`~seqferry_scheduler.ticks.TickClaims`); the winner
publishes. The event id of a scheduled window is derived from the prefix, task and tick, so even a window
published twice (a claim released after a failed publish, then retried) is one event to the executor's
idempotency.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.metrics import Meter

from seqferry_scheduler.domain.window import Window, compute_window, tick_instant, tick_of
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_scheduler.ticks import TickClaims
from seqferry_shared.events.models import Meta, TransferWindowOpened
from seqferry_shared.messaging.publisher import EventPublisher

log = logging.getLogger(__name__)

MAX_REPLAY = 2
"""How many missed ticks a late replica still opens before it jumps to the current one."""
WINDOW_NAMESPACE = uuid.UUID("6f1d3c0e-5b7a-4c8e-9a51-3f0d2b9c7e41")

Clock = Callable[[], datetime]


_TRACER = trace.get_tracer("seqferry.scheduler")


def utc_now() -> datetime:
    return datetime.now(UTC)


def window_event_id(prefix: str, task: str, tick: int) -> uuid.UUID:
    return uuid.uuid5(WINDOW_NAMESPACE, f"{prefix}/{task}/{tick}")


def window_correlation_id(task: str, tick: int | str) -> str:
    return f"window#{task}#{tick}"


@dataclass(frozen=True, slots=True)
class Fired:
    task: str
    tick: int
    published: bool
    """False when another replica had already claimed this tick for this task."""
    event: TransferWindowOpened


class Scheduler:
    def __init__(
        self,
        settings: SchedulerSettings,
        *,
        claims: TickClaims,
        publisher: EventPublisher,
        clock: Clock = utc_now,
        meter: Meter | None = None,
    ) -> None:
        self._settings = settings
        self._claims = claims
        self._publisher = publisher
        self._clock = clock
        self._zone = settings.zone
        self._sequencers = settings.sequencers
        self.published = 0
        self.last_tick: int | None = None
        self._upcoming: int | None = None
        self._held_elsewhere: dict[int, datetime] = {}  # tick -> when another replica was found holding it
        self._windows = (
            meter.create_counter("seqferry_windows_published", description="Transfer windows published, by task")
            if meter is not None
            else None
        )

    # -- pure parts -------------------------------------------------------------------------------------------
    def window(self, instant: datetime, tick: int) -> Window:
        return compute_window(
            instant,
            tick=tick,
            zone=self._zone,
            days=self._settings.transfer_days,
            sequencers=self._sequencers,
            adhoc_path=self._settings.adhoc_path if self._settings.include_adhoc else None,
        )

    def next_tick(self) -> tuple[int, datetime]:
        tick = tick_of(self._clock(), self._settings.interval) + 1
        return tick, tick_instant(tick, self._settings.interval)

    def event(self, task: str, window: Window, *, event_id: uuid.UUID, correlation_id: str) -> TransferWindowOpened:
        return TransferWindowOpened(
            meta=Meta(event_id=event_id, correlation_id=correlation_id),
            task=task,
            tick=window.tick,
            window_start=window.start,
            window_end=window.end,
            time_zone=window.time_zone,
            includes=list(window.includes),
        )

    # -- effects ----------------------------------------------------------------------------------------------
    async def fire(self, tick: int, *, take_over: bool = False) -> list[Fired]:
        """Open tick ``tick`` for every task this replica can claim; publish those windows.

        ``take_over``: also claim a task's tick that another replica claimed and never published (see
        ``claim_timeout``)."""
        abandoned_after = self._settings.claim_timeout if take_over else None
        instant = tick_instant(tick, self._settings.interval)
        window = self.window(instant, tick)
        fired: list[Fired] = []
        try:
            for task in self._settings.tasks:
                event = self.event(
                    task,
                    window,
                    event_id=window_event_id(self._settings.prefix, task, tick),
                    correlation_id=window_correlation_id(task, tick),
                )
                won = await self._claims.claim(
                    task, tick, event_id=str(event.meta.event_id), window_end=instant, abandoned_after=abandoned_after
                )
                fired.append(Fired(task, tick, won, event))
        except BaseException:
            await self._release([f for f in fired if f.published], key=str(tick))
            raise
        await self._publish([f for f in fired if f.published], key=str(tick))
        self.last_tick = tick
        return fired

    async def fire_manual(self) -> list[Fired]:
        """Open a window now, outside the schedule (a person asked); recorded, never deduplicated."""
        instant = self._clock()
        tick = tick_of(instant, self._settings.interval)
        window = self.window(instant, tick)
        manual_id = f"{tick}#manual-{uuid.uuid4().hex[:12]}"
        fired = []
        for task in self._settings.tasks:
            event = self.event(
                task, window, event_id=uuid.uuid4(), correlation_id=window_correlation_id(task, manual_id)
            )
            await self._claims.claim(task, manual_id, event_id=str(event.meta.event_id), window_end=instant)
            fired.append(Fired(task, tick, True, event))
        await self._publish(fired, key=manual_id)
        return fired

    async def _publish(self, fired: list[Fired], *, key: str) -> None:
        if not fired:
            return
        try:
            # Each tick starts a trace; the window events carry it to the executor and on to the notifier.
            with _TRACER.start_as_current_span(f"scheduler tick {key}", kind=trace.SpanKind.PRODUCER) as span:
                span.set_attribute("seqferry.tasks", [f.task for f in fired])
                await self._publisher.publish(*(f.event for f in fired))
        except BaseException:
            # Without the release the tick would stay claimed and unpublished: lost until the next one.
            await self._release(fired, key=key)
            raise
        for f in fired:
            await self._claims.mark_published(f.task, key)
            if self._windows is not None:
                self._windows.add(1, {"task": f.task})
            log.info("tick %s: window for task %s published (%d include patterns)", key, f.task, len(f.event.includes))
        self.published += len(fired)

    async def _release(self, fired: list[Fired], *, key: str) -> None:
        if fired:
            await asyncio.shield(asyncio.gather(*(self._claims.release(f.task, key) for f in fired)))

    # -- the clock's rounds (the runtime runs them: runtime.add_periodic(..., every=until_next_tick)) ------------
    def until_next_tick(self) -> float:
        """Seconds until the next tick to open is due (0 when it is due already)."""
        upcoming = self._upcoming_tick()
        return max(0.0, (tick_instant(upcoming, self._settings.interval) - self._clock()).total_seconds())

    def _upcoming_tick(self) -> int:
        if self._upcoming is None:  # the first round: this tick, or the next one
            current = tick_of(self._clock(), self._settings.interval)
            self._upcoming = current + (0 if self._settings.catch_up_on_start else 1)
        return self._upcoming

    async def tick_if_due(self) -> None:
        """Open the next tick if it is due.

        Ticks are opened in order; a replica that falls behind (a slow publish, a short pause) opens the ticks it
        missed, up to ``MAX_REPLAY`` back. After a longer pause it jumps to the current tick: the next window
        covers the dates of the skipped ones anyway. A tick that fails is not tried again: the next one covers its
        dates.
        """
        upcoming = self._upcoming_tick()
        current = tick_of(self._clock(), self._settings.interval)
        if current < upcoming:  # woke early (clock adjusted): wait again for the boundary
            return
        if current - upcoming > MAX_REPLAY:
            log.warning("ticks %d to %d missed; continuing from %d", upcoming, current - 1, current)
            upcoming = current
        self._upcoming = upcoming + 1
        try:
            fired = await self.fire(upcoming)
        except Exception as exc:
            exc.add_note(f"tick {upcoming} could not be opened; the next tick covers its dates")
            raise
        won = [f.task for f in fired if f.published]
        if not won:
            log.debug("tick %d already opened by another replica", upcoming)
        if len(won) < len(fired):
            self._held_elsewhere[upcoming] = self._clock()
        await self.take_over_abandoned()

    async def take_over_abandoned(self) -> None:
        """Open the recent ticks another replica claimed but never published (it died in between, or gave the
        claim back after a failed publish).

        A replica that lost a tick to another keeps it in mind for ``MAX_REPLAY`` ticks; once the claim is older
        than ``claim_timeout`` and still unpublished, this replica takes it over and publishes the same window (same
        event id). Older ticks are let go: the next window covers their dates.
        """
        if not self._held_elsewhere:
            return
        current = tick_of(self._clock(), self._settings.interval)
        for tick, seen_at in sorted(self._held_elsewhere.items()):
            if tick < current - MAX_REPLAY:
                del self._held_elsewhere[tick]
                continue
            if self._clock() - seen_at < self._settings.claim_timeout:
                continue
            states = [await self._claims.status(task, tick) for task in self._settings.tasks]
            if all(state is not None and state.get("status") == "published" for state in states):
                del self._held_elsewhere[tick]
                continue
            # claimed long ago and unpublished, or released after a failed publish and never retried
            fired = await self.fire(tick, take_over=True)
            taken = [f.task for f in fired if f.published]
            if taken:
                log.warning("tick %d: claimed by a replica that never published it; opened here for %s", tick, taken)
