"""Simulator settings (environment variables ``SEQFERRY_*``; see the README for the table)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from seqferry_shared.sequencers import SequencerPath
from seqferry_shared.settings import ServiceSettings
from seqferry_simulator.domain.errors import SpecError
from seqferry_simulator.domain.pace import check_pace
from seqferry_simulator.domain.profiles import PROFILES
from seqferry_simulator.domain.reads import ReadStructure
from seqferry_simulator.domain.spec import MAX_CHUNKS, MAX_SCALE, MIN_SCALE


class SimulatorSettings(ServiceSettings):
    http_port: int = 8084
    nas_root: Path = Field(
        default=Path("./var/nas"),
        description="Local directory that plays the NAS; sequencer paths are resolved under it.",
    )
    mode: Literal["synthetic", "parity"] = Field(
        default="synthetic",
        description="'synthetic' writes instrument run folders over time; 'parity' copies the sample bucket into "
        "<path>/<date>/<uuid>/ every tick, as the AWS sample did.",
    )
    pace: str = Field(
        default="0.5",
        description="'realistic' (each instrument's real cadence) or cycles per second, e.g. '0.5'.",
    )
    scale: float = Field(
        default=0.0001,
        ge=MIN_SCALE,
        le=MAX_SCALE,
        description="File-size factor: 1.0 writes real-size base calls, 0.0001 a ten-thousandth.",
    )
    seed: int = Field(default=1, ge=0, description="Seed of instrument serials, run numbers and contents.")
    max_parallel_runs: int = Field(default=2, ge=1, le=64, description="Runs written at the same time, at most.")
    start_interval_s: float = Field(
        default=600.0,
        ge=0,
        description="Seconds between autonomous run starts (one per free instrument in turn); 0 disables them.",
    )
    run_cycles: str | None = Field(
        default=None,
        description="Cycles per read of autonomous runs, e.g. '26' or '51,8,8,51'; unset: each instrument's default.",
    )
    stopped_run_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of autonomous runs that stop early (operator stop or instrument error), leaving the "
        "markers and RunCompletionStatus.xml a real stopped run leaves.",
    )
    chunks_per_file: int = Field(
        default=4, ge=1, le=MAX_CHUNKS, description="Appends each base-call file is written in over its cycle."
    )
    disk_budget_bytes: int | None = Field(
        default=2 * 1024**3,
        ge=0,
        description="Bytes the simulator's folders may use; finished runs beyond it are deleted oldest first. "
        "Empty disables the budget.",
    )
    state_dir: Path = Field(
        default=Path("./var/state/simulator"),
        description="Where the ledger of written runs is kept (only folders in it are ever deleted).",
    )
    parity_bucket: str | None = Field(default=None, description="Sample-data bucket copied in parity mode.")
    parity_prefix: str = Field(default="", description="Key prefix of the sample data in the parity bucket.")
    parity_interval_s: float = Field(default=300.0, gt=0, description="Seconds between parity copies.")

    @field_validator("pace")
    @classmethod
    def _pace(cls, value: str) -> str:
        try:
            return check_pace(value)
        except SpecError as exc:
            raise ValueError(exc.message) from exc

    @field_validator("run_cycles")
    @classmethod
    def _cycles(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return ReadStructure.parse(value).describe()
        except SpecError as exc:
            raise ValueError(exc.message) from exc

    @field_validator("disk_budget_bytes", mode="before")
    @classmethod
    def _empty_budget(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _instruments_simulated(self) -> Self:
        unsupported = [f"{s.path}={s.instrument.value}" for s in self.sequencers if s.instrument not in PROFILES]
        if unsupported:
            raise ValueError(
                "SEQFERRY_SEQUENCER_PATHS: the simulator does not write runs for "
                + ", ".join(unsupported)
                + f"; it simulates {', '.join(i.value for i in PROFILES)}"
            )
        return self

    @model_validator(mode="after")
    def _parity_needs_bucket(self) -> Self:
        if self.mode == "parity" and not self.parity_bucket:
            raise ValueError("SEQFERRY_PARITY_BUCKET is required when SEQFERRY_MODE=parity")
        return self

    @property
    def tagged_sequencers(self) -> tuple[SequencerPath, ...]:
        return tuple(self.sequencers)
