"""HTTP app and lifespan: the tick loop runs in the background; HTTP previews windows and triggers a tick."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from pydantic import AwareDatetime, BaseModel, Field

from seqferry_scheduler.domain.window import tick_instant, tick_of
from seqferry_scheduler.scheduler import Clock, Fired, Scheduler, utc_now
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_scheduler.ticks import TickClaims
from seqferry_shared.http import bearer_auth, create_http_app, from_state
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry


class WindowPreview(BaseModel):
    tick: int = Field(description="Tick number: the tick's instant in seconds since the epoch / interval.")
    at: AwareDatetime = Field(description="When the tick fires (UTC).")
    tasks: list[str]
    time_zone: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    dates: list[str] = Field(description="Lab dates in the window, newest first (ISO).")
    includes: list[str]
    include_string: str = Field(description="The patterns joined with '|', as DataSync receives them.")


class OpenedWindow(BaseModel):
    task: str
    tick: int
    event_id: str
    correlation_id: str | None
    includes: list[str]


class SchedulerStatus(BaseModel):
    interval_s: int
    tasks: list[str]
    time_zone: str
    last_tick: int | None = Field(description="Last tick this replica took part in.")
    windows_published: int = Field(description="Windows this replica published since it started.")
    replica: str


_scheduler = from_state("scheduler", Scheduler, "scheduler")


SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]


def _opened(fired: Fired) -> OpenedWindow:
    return OpenedWindow(
        task=fired.task,
        tick=fired.tick,
        event_id=str(fired.event.meta.event_id),
        correlation_id=fired.event.meta.correlation_id,
        includes=fired.event.includes,
    )


def create_app(settings: SchedulerSettings, *, clock: Clock = utc_now, telemetry: Telemetry | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings, "scheduler", telemetry=telemetry)
    replica = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            claims = TickClaims(
                await runtime.client("dynamodb"),
                runtime.names.table,
                owner=replica,
                ttl=timedelta(days=settings.tick_record_ttl_days),
            )
            scheduler = Scheduler(
                settings, claims=claims, publisher=runtime.publisher, clock=clock, meter=runtime.telemetry.meter
            )
            app.state.scheduler = scheduler
            runtime.add_periodic("ticker", scheduler.tick_if_due, every=scheduler.until_next_tick)
            runtime.start()
            yield
            app.state.scheduler = None

    app = create_http_app(
        title="seqferry scheduler",
        description="Opens a transfer window per task on every tick, once across all replicas.",
        settings=settings,
        runtime=runtime,
        lifespan=lifespan,
    )
    authorized = [Depends(bearer_auth(settings))]

    @app.get("/windows/next", response_model=WindowPreview, tags=["windows"], summary="Preview the next window")
    async def next_window(
        scheduler: SchedulerDep,
        at: Annotated[
            AwareDatetime | None, Query(description="Preview the first tick after this instant instead of now.")
        ] = None,
    ) -> WindowPreview:
        if at is None:
            tick, instant = scheduler.next_tick()
        else:
            tick = tick_of(at, settings.interval) + 1
            instant = tick_instant(tick, settings.interval)
        window = scheduler.window(instant, tick)
        return WindowPreview(
            tick=tick,
            at=instant,
            tasks=list(settings.tasks),
            time_zone=window.time_zone,
            window_start=window.start,
            window_end=window.end,
            dates=[d.isoformat() for d in window.dates],
            includes=list(window.includes),
            include_string=window.include_string,
        )

    @app.post(
        "/ticks",
        response_model=list[OpenedWindow],
        dependencies=authorized,
        tags=["windows"],
        summary="Open a window now for every task (bearer token)",
    )
    async def tick_now(scheduler: SchedulerDep) -> list[OpenedWindow]:
        return [_opened(f) for f in await scheduler.fire_manual()]

    @app.get("/status", response_model=SchedulerStatus, tags=["windows"], summary="This replica's schedule")
    async def scheduler_status(scheduler: SchedulerDep) -> SchedulerStatus:
        return SchedulerStatus(
            interval_s=int(settings.interval.total_seconds()),
            tasks=list(settings.tasks),
            time_zone=settings.lab_time_zone,
            last_tick=scheduler.last_tick,
            windows_published=scheduler.published,
            replica=replica,
        )

    return app
