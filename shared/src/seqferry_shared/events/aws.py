"""Typed models of the AWS services' own EventBridge events that seqferry consumes.

A model validates the whole event in EventBridge's JSON shape (``id``, ``time``, ``resources``, ``detail``...), so a
handler receives one typed value, never an envelope or a dict; a model that does not validate sends the message
to the dead-letter queue with the invalid field named. Only AWS can put an ``aws.*`` source, so a model is routed
by its exact source and detail-type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

EXECUTION_MARKER = "/execution/"


class AwsEvent(BaseModel):
    """The fields EventBridge puts around every AWS service's event."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    SOURCE: ClassVar[str]
    DETAIL_TYPE: ClassVar[str]

    id: str = Field(description="EventBridge's event id: stable across redeliveries of the same event.")
    time: datetime | None = Field(default=None, description="When the service emitted it (UTC if unzoned).")
    resources: tuple[str, ...] = ()
    account: str = ""
    region: str = ""

    @field_validator("time")
    @classmethod
    def _utc_if_unzoned(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class DataSyncStateDetail(BaseModel):
    """DataSync's detail: the new status only; no counters (``DescribeTaskExecution`` is the source of truth)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    state: str | None = Field(default=None, alias="State", description="The task execution's status, e.g. SUCCESS.")


class DataSyncStateChange(AwsEvent):
    """``aws.datasync`` / ``DataSync Task Execution State Change``: the execution's ARN is among ``resources``."""

    SOURCE: ClassVar[str] = "aws.datasync"
    DETAIL_TYPE: ClassVar[str] = "DataSync Task Execution State Change"

    detail: DataSyncStateDetail = Field(default_factory=DataSyncStateDetail)

    @field_validator("resources")
    @classmethod
    def _names_an_execution(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not any(_is_execution_arn(r) for r in value):
            raise ValueError(f"no DataSync task-execution ARN in resources {list(value)!r}")
        return value

    @property
    def execution_arn(self) -> str:
        return next(r for r in self.resources if _is_execution_arn(r))

    @property
    def task_arn(self) -> str:
        return task_arn_of(self.execution_arn)

    @property
    def state(self) -> str | None:
        return self.detail.state


def _is_execution_arn(resource: str) -> bool:
    return EXECUTION_MARKER in resource and ":datasync:" in resource


def task_arn_of(execution_arn: str) -> str:
    """The task ARN an execution ARN (``<task arn>/execution/exec-…``) belongs to."""
    return execution_arn.split(EXECUTION_MARKER, 1)[0]
