"""DataSync's own shapes → observations: the state-change event and a DescribeTaskExecution response."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from seqferry_notifier.domain.executions import Observation, Source, parse_state
from seqferry_shared.events.aws import DataSyncStateChange, task_arn_of
from seqferry_shared.events.models import Counters, ErrorInfo


def event_observation(event: DataSyncStateChange, at: datetime) -> Observation:
    """DataSync's EventBridge event: state only, no counters."""
    return Observation(
        execution_id=event.execution_arn,
        arn=event.execution_arn,
        at=at,
        source=Source.DATASYNC_EVENT,
        state=parse_state(event.state),
        backend="datasync",
        task=event.task_arn,
    )


_COUNTER_KEYS = ("EstimatedFilesToTransfer", "FilesTransferred", "BytesTransferred", "FilesVerified")


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return int(value) if isinstance(value, int | float) else 0


def _failed_files(data: Mapping[str, Any]) -> int:
    failed = data.get("FilesFailed")
    if isinstance(failed, Mapping):
        return sum(int(v) for v in failed.values() if isinstance(v, int | float))
    return 0


def describe_observation(response: Mapping[str, Any], at: datetime) -> Observation:
    """A DescribeTaskExecution response: the source of truth for state, counters and error."""
    arn = str(response["TaskExecutionArn"])
    state = parse_state(response.get("Status"))
    has_counters = any(key in response for key in _COUNTER_KEYS)
    counters = Counters(
        files_estimated=_int(response, "EstimatedFilesToTransfer"),
        bytes_estimated=_int(response, "EstimatedBytesToTransfer"),
        files_transferred=_int(response, "FilesTransferred"),
        bytes_transferred=_int(response, "BytesTransferred"),
        files_verified=_int(response, "FilesVerified"),
        files_skipped=_int(response, "FilesSkipped"),
        files_failed=_failed_files(response),
    )
    result = response.get("Result")
    error = None
    if isinstance(result, Mapping) and result.get("ErrorCode"):
        error = ErrorInfo(code=str(result["ErrorCode"]), message=str(result.get("ErrorDetail", ""))[:1000])
    started = response.get("StartTime")
    includes = response.get("Includes")
    patterns: tuple[str, ...] | None = None
    if isinstance(includes, list):
        patterns = tuple(
            str(rule.get("Value", "")) for rule in includes if isinstance(rule, Mapping) and rule.get("Value")
        )
    return Observation(
        execution_id=arn,
        arn=arn,
        at=at,
        source=Source.DESCRIBE,
        state=state,
        backend="datasync",
        task=task_arn_of(arn),
        counters=counters if has_counters else None,
        error=error,
        started_at=started if isinstance(started, datetime) else None,
        includes=patterns,
    )
