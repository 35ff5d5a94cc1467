"""HTTP routes: start a run (bearer token), list runs, one run, what can be simulated.

``bad_request`` and ``busy`` turn the domain's refusals into answers (422 naming the field, 409).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from seqferry_shared.http import AUTHORIZED, from_state
from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.errors import SpecError
from seqferry_simulator.domain.pace import check_pace
from seqferry_simulator.domain.plan import Phase
from seqferry_simulator.domain.profiles import PROFILES
from seqferry_simulator.domain.records import Kind, RunState
from seqferry_simulator.domain.spec import CompletionStatus
from seqferry_simulator.service import RunManager, RunRequest, RunView
from seqferry_simulator.settings import SimulatorSettings


class RunIn(BaseModel):
    """Start a run now. Every field is optional; unset ones come from the settings and the instrument."""

    model_config = ConfigDict(extra="forbid")

    instrument: Instrument | None = Field(default=None, description="Instrument family; a free one if unset.")
    sequencer_path: str | None = Field(default=None, description="NAS-absolute sequencer folder to write to.")
    cycles: str | int | list[int] | None = Field(
        default=None,
        description="Cycles per read: 151, '151,151', '151,10,151' or '151,10,10,151' (R1, I1, I2, R2).",
        examples=["51,8,8,51"],
    )
    flowcell: str | None = Field(default=None, description="Flow-cell type, e.g. 'v2-nano' (MiSeq) or 'S1'.")
    scale: float | None = Field(default=None, gt=0, le=1, description="File-size factor for this run.")
    seed: int | None = Field(default=None, ge=0, description="Seed of this run's contents.")
    pace: str | None = Field(default=None, description="'realistic' or cycles per second for this run.")
    stop_after_cycle: int | None = Field(
        default=None, ge=1, description="Make this a stopped run: it ends after this many cycles."
    )
    stop_status: CompletionStatus | None = Field(
        default=None, description="How a stopped run ends (default UserEndedEarly; ExceptionEndedEarly: an error)."
    )

    @field_validator("pace")
    @classmethod
    def _pace(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_pace(value)
        except SpecError as exc:
            raise ValueError(exc.message) from exc


class RunOut(BaseModel):
    run_id: str
    kind: Kind
    instrument: str | None
    sequencer_path: str
    path: str = Field(description="NAS-absolute path of the run folder.")
    state: RunState
    phase: Phase
    flowcell: str | None
    cycles: str | None
    total_cycles: int
    cycles_done: int
    progress: float = Field(description="Share of cycles written, 0 to 1.")
    files: int
    bytes: int
    markers: list[str]
    completion_status: str | None = Field(description="CompletedAsPlanned, or how a stopped run ended.")
    scale: float | None
    seed: int | None
    started_at: AwareDatetime
    completed_at: AwareDatetime | None
    error: str | None

    @classmethod
    def of(cls, view: RunView) -> RunOut:
        r = view.record
        return cls(
            run_id=r.run_id,
            kind=r.kind,
            instrument=r.instrument,
            sequencer_path=r.sequencer_path,
            path=r.nas_path,
            state=r.state,
            phase=view.phase,
            flowcell=r.flowcell,
            cycles=r.cycles,
            total_cycles=r.total_cycles,
            cycles_done=view.cycles_done,
            progress=round(view.cycles_done / r.total_cycles, 4) if r.total_cycles else 0.0,
            files=r.files,
            bytes=r.bytes,
            markers=list(view.markers),
            completion_status=r.completion_status,
            scale=r.scale,
            seed=r.seed,
            started_at=r.started_at,
            completed_at=r.completed_at,
            error=r.error,
        )


class InstrumentOut(BaseModel):
    instrument: Instrument
    label: str
    flowcells: list[str]
    default_flowcell: str
    default_cycles: str
    basecalls: str
    markers: list[str]
    sequencer_paths: list[str]


ManagerDep = Annotated[RunManager, Depends(from_state("manager", RunManager, "simulator"))]
SettingsDep = Annotated[SimulatorSettings, Depends(from_state("settings", SimulatorSettings, "simulator"))]

router = APIRouter(tags=["runs"])


async def bad_request(_: Request, exc: Exception) -> JSONResponse:
    """Registered for :class:`SpecError`: 422 naming the field, as FastAPI's own validation answers."""
    if not isinstance(exc, SpecError):
        raise exc
    detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def busy(_: Request, exc: Exception) -> JSONResponse:
    """Registered for :class:`CapacityError`: 409, no instrument free."""
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)


@router.post(
    "/runs",
    response_model=RunOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=AUTHORIZED,
    tags=["runs"],
    summary="Start a run now (bearer token)",
    responses={409: {"description": "No instrument free"}, 422: {"description": "Invalid request"}},
)
async def start_run(body: RunIn, manager: ManagerDep) -> RunOut:
    record = await manager.start(
        RunRequest(
            instrument=body.instrument,
            sequencer_path=body.sequencer_path,
            cycles=body.cycles,
            flowcell=body.flowcell,
            scale=body.scale,
            seed=body.seed,
            pace=body.pace,
            stop_after_cycle=body.stop_after_cycle,
            stop_status=body.stop_status,
        )
    )
    view = next(v for v in manager.views() if v.record.nas_path == record.nas_path)
    return RunOut.of(view)


@router.get("/runs", response_model=list[RunOut], summary="Runs in flight and recent history")
async def list_runs(
    manager: ManagerDep,
    state: Annotated[RunState | None, Query(description="Only runs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recent runs first, at most this many.")] = 100,
) -> list[RunOut]:
    views = [v for v in manager.views() if state is None or v.record.state is state]
    views.sort(key=lambda v: v.record.started_at, reverse=True)
    return [RunOut.of(v) for v in views[:limit]]


@router.get("/runs/{run_id}", response_model=RunOut, summary="One run")
async def get_run(run_id: str, manager: ManagerDep) -> RunOut:
    for view in manager.views():
        if view.record.run_id == run_id:
            return RunOut.of(view)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r}")


@router.get("/instruments", response_model=list[InstrumentOut], summary="What can be simulated")
async def instruments(settings: SettingsDep) -> list[InstrumentOut]:
    return [
        InstrumentOut(
            instrument=p.instrument,
            label=p.label,
            flowcells=list(p.flowcells),
            default_flowcell=p.default_flowcell,
            default_cycles=",".join(str(c) for c in p.default_reads),
            basecalls=p.basecalls.value,
            markers=list(p.markers),
            sequencer_paths=[s.path for s in settings.tagged_sequencers if s.instrument is p.instrument],
        )
        for p in PROFILES.values()
    ]
