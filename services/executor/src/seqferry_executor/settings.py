"""Executor settings (environment variables ``SEQFERRY_*``; see the README for the table)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from seqferry_executor.backends.local.config import LocalBackendConfig
from seqferry_shared.settings import ServiceSettings

DEFAULT_POLL_INTERVAL_S = {"datasync": 15.0, "local": 0.5}
_TASK_ARN = re.compile(r"^arn:aws[\w-]*:datasync:[a-z0-9-]+:\d{12}:task/task-[0-9a-f]{17}$")


def _parse_task_arns(value: object) -> object:
    """``name=arn,name=arn`` or a JSON object; empty means no DataSync task configured."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return json.loads(text)
    mapping: dict[str, str] = {}
    for entry in text.split(","):
        name, sep, arn = entry.strip().partition("=")
        if not sep or not name.strip() or not arn.strip():
            raise ValueError(f"datasync task entry {entry.strip()!r}: expected name=arn")
        mapping[name.strip()] = arn.strip()
    return mapping


class ExecutorSettings(ServiceSettings):
    # Nested settings of the local engine: SEQFERRY_LOCAL__QUIET_PERIOD_S, SEQFERRY_LOCAL__CHECKSUM, ...
    model_config = SettingsConfigDict(env_nested_delimiter="__")

    http_port: int = 8082
    backend: Literal["datasync", "local"] = Field(
        default="local", description="Transfer backend: AWS DataSync task executions, or seqferry's own engine."
    )
    nas_root: Path = Field(
        default=Path("var/nas"), description="Local directory that holds the NAS (local backend; NAS paths map here)."
    )
    datasync_task_arns: Annotated[dict[str, str], NoDecode, BeforeValidator(_parse_task_arns)] = Field(
        default_factory=dict,
        description="Task name -> DataSync task ARN: 'sequencers=arn:aws:datasync:...:task/task-...,other=...' "
        "or a JSON object.",
    )
    default_task: str = Field(default="sequencers", description="Task of a Transfer Requested that names none.")
    poll_interval_s: float | None = Field(
        default=None, gt=0, description="Seconds between status polls; default 15 (datasync) or 0.5 (local)."
    )
    start_lease_s: float = Field(
        default=300.0, gt=0, description="How long a replica may take to start an execution before another may."
    )
    retry_base_s: float = Field(default=2.0, gt=0, description="First backoff after a throttled or failed start.")
    retry_max_s: float = Field(default=300.0, gt=0, description="Longest backoff between start attempts.")
    record_ttl_days: int = Field(default=90, ge=1, description="How long execution and request records are kept.")
    local: LocalBackendConfig = Field(
        default_factory=LocalBackendConfig, description="Tuning of the local engine (SEQFERRY_LOCAL__<FIELD>)."
    )

    @property
    def poll_interval(self) -> float:
        return self.poll_interval_s or DEFAULT_POLL_INTERVAL_S[self.backend]

    @field_validator("datasync_task_arns")
    @classmethod
    def _task_arns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, arn in value.items():
            if not _TASK_ARN.match(arn):
                raise ValueError(f"datasync task {name!r}: {arn!r} is not a DataSync task ARN")
        return value

    @model_validator(mode="after")
    def _datasync_needs_tasks(self) -> Self:
        if self.backend == "datasync" and not self.datasync_task_arns:
            raise ValueError("SEQFERRY_DATASYNC_TASK_ARNS must name at least one task for the datasync backend")
        return self
