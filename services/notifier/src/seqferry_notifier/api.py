"""HTTP for people: executions, runs, dashboard aggregates and the live dashboard page (read-only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from seqferry_notifier.domain.dashboard import Dashboard, build, range_of
from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_notifier.domain.runs import RunRecord
from seqferry_notifier.service import NotifierService, utc_now
from seqferry_notifier.settings import NotifierSettings

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=500, description="Most recent first.")]


# Ranges longer than a day read more executions and are recomputed less often: a page polling a four-week view
# must not cost a large query every second and a half.
SHORT_LIMIT, LONG_LIMIT = 500, 2000
LONG_RANGE_CACHE_S = 30.0


class DashboardView:
    """Dashboard aggregates per range, recomputed at most every ``dashboard_cache_s`` however many pages poll."""

    def __init__(
        self, service: NotifierService, settings: NotifierSettings, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._service = service
        self.default_range = settings.dashboard_range
        self._ttl = settings.dashboard_cache_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._cached: dict[str, tuple[float, Dashboard]] = {}

    async def get(self, range_name: str | None = None) -> Dashboard:
        name = range_name or self.default_range
        window = range_of(name)
        long = window > timedelta(days=1)
        ttl = max(self._ttl, LONG_RANGE_CACHE_S) if long else self._ttl
        async with self._lock:
            cached = self._cached.get(name)
            if cached is not None and time.monotonic() - cached[0] < ttl:
                return cached[1]
            now = self._clock()
            limit = LONG_LIMIT if long else SHORT_LIMIT
            executions = await self._service.executions(limit=limit, since=now - window)
            runs = await self._service.runs(limit=100)
            dashboard = build(
                executions, runs, now=now, window=window, range_name=name, truncated=len(executions) >= limit
            )
            self._cached[name] = (time.monotonic(), dashboard)
            return dashboard


class RunView(BaseModel):
    """A run with what people ask first: status, progress, marker, why it is not delivered yet."""

    status: str
    progress: float
    marker: str
    s3_uri: str
    run: RunRecord

    @classmethod
    def of(cls, run: RunRecord) -> RunView:
        return cls(
            status=run.status.value, progress=round(run.progress, 4), marker=run.marker, s3_uri=run.s3_uri, run=run
        )


def _service(request: Request) -> NotifierService:
    service: NotifierService = request.app.state.service
    return service


@cache
def _page_template() -> str:
    return files("seqferry_notifier").joinpath("static/dashboard.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page(request: Request) -> HTMLResponse:
    settings: NotifierSettings = request.app.state.settings
    page = (
        _page_template()
        .replace("__REFRESH_MS__", str(settings.dashboard_refresh_ms))
        .replace("__DEFAULT_RANGE__", settings.dashboard_range)
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


RangeName = Annotated[
    str | None,
    Query(alias="range", pattern="^(1h|6h|24h|7d|14d|28d)$", description="1h, 6h, 24h, 7d, 14d or 28d (4 weeks)."),
]


@router.get("/api/dashboard", response_model=Dashboard, tags=["dashboard"], summary="Dashboard aggregates")
async def dashboard_data(request: Request, range_name: RangeName = None) -> Dashboard:
    view: DashboardView = request.app.state.dashboard
    return await view.get(range_name)


@router.get("/executions", tags=["executions"], summary="Transfer executions, most recently updated first")
async def list_executions(request: Request, limit: Limit = 100) -> dict[str, list[ExecutionRecord]]:
    return {"items": await _service(request).executions(limit=limit)}


@router.get("/executions/{execution_id:path}", tags=["executions"], summary="One execution with its history")
async def get_execution(request: Request, execution_id: str) -> ExecutionRecord:
    record = await _service(request).execution(execution_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no execution {execution_id!r}")
    return record


@router.get("/runs", tags=["runs"], summary="Runs, most recent progress first")
async def list_runs(request: Request, limit: Limit = 100) -> dict[str, list[RunView]]:
    return {"items": [RunView.of(run) for run in await _service(request).runs(limit=limit)]}


@router.get("/runs/{run_id}", tags=["runs"], summary="One run: status, progress, executions, delivery")
async def get_run(request: Request, run_id: str) -> RunView:
    run = await _service(request).run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r}")
    return RunView.of(run)
