"""HTTP routes: preview the next window, open one now (bearer token), this replica's schedule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from seqferry_scheduler.domain.window import tick_instant, tick_of
from seqferry_scheduler.service import Fired, Scheduler
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_shared.http import AUTHORIZED, from_state


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


SchedulerDep = Annotated[Scheduler, Depends(from_state("scheduler", Scheduler, "scheduler"))]
SettingsDep = Annotated[SchedulerSettings, Depends(from_state("settings", SchedulerSettings, "scheduler"))]

router = APIRouter(tags=["windows"])


def _opened(fired: Fired) -> OpenedWindow:
    return OpenedWindow(
        task=fired.task,
        tick=fired.tick,
        event_id=str(fired.event.meta.event_id),
        correlation_id=fired.event.meta.correlation_id,
        includes=fired.event.includes,
    )


@router.get("/windows/next", response_model=WindowPreview, summary="Preview the next window")
async def next_window(
    scheduler: SchedulerDep,
    settings: SettingsDep,
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


@router.post(
    "/ticks",
    response_model=list[OpenedWindow],
    dependencies=AUTHORIZED,
    summary="Open a window now for every task (bearer token)",
)
async def tick_now(scheduler: SchedulerDep) -> list[OpenedWindow]:
    return [_opened(f) for f in await scheduler.fire_manual()]


@router.get("/status", response_model=SchedulerStatus, summary="This replica's schedule")
async def scheduler_status(scheduler: SchedulerDep, settings: SettingsDep, request: Request) -> SchedulerStatus:
    return SchedulerStatus(
        interval_s=int(settings.interval.total_seconds()),
        tasks=list(settings.tasks),
        time_zone=settings.lab_time_zone,
        last_tick=scheduler.last_tick,
        windows_published=scheduler.published,
        replica=request.app.state.replica,
    )
