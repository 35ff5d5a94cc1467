"""Scheduler settings (environment variables ``SEQFERRY_*``; see the README for the table)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode

from seqferry_scheduler.domain.durations import parse_duration
from seqferry_shared.settings import ServiceSettings

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _split_names(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class SchedulerSettings(ServiceSettings):
    http_port: int = 8081
    transfer_days: int = Field(
        default=3, ge=1, le=31, description="Lab dates per window, the tick's date included (reference: 3)."
    )
    interval: Duration = Field(
        default=timedelta(minutes=20),
        description="Time between ticks: '20m', '90s', '1h', seconds, or ISO 8601. Under a minute only for the "
        "local backend (DataSync launches take minutes; the executor coalesces either way).",
    )
    tasks: Annotated[list[str], NoDecode, BeforeValidator(_split_names)] = Field(
        default_factory=lambda: ["sequencers"],
        min_length=1,
        description="Comma-separated task names; each tick opens one window per task.",
    )
    include_adhoc: bool = Field(default=True, description="Add the ad-hoc folder to every window.")
    catch_up_on_start: bool = Field(
        default=True,
        description="At start, open the current tick's window if no replica has (a fresh deployment does not "
        "wait a whole interval).",
    )
    tick_record_ttl_days: int = Field(default=7, ge=1, description="How long tick claims stay in the state table.")
    claim_timeout: Duration = Field(
        default=timedelta(seconds=15),
        description="A tick claimed but not published after this long is taken over by another replica (its "
        "claimer died between the two); the window's event id is the same, so a late second copy is one event to "
        "the executor.",
    )

    @field_validator("interval")
    @classmethod
    def _whole_seconds(cls, value: timedelta) -> timedelta:
        seconds = value.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError(f"interval must be a whole number of seconds, at least 1 (got {seconds} s)")
        return value

    @field_validator("tasks")
    @classmethod
    def _task_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 128:
                raise ValueError(f"task name {name!r}: use letters, digits, '-', '_' or '.' (at most 128)")
        if len(set(value)) != len(value):
            raise ValueError("task names must be unique")
        return value
