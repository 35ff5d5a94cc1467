import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from seqferry_notifier.domain.datasync import describe_observation, event_observation
from seqferry_notifier.domain.executions import Source
from seqferry_shared.events.aws import DataSyncStateChange
from seqferry_shared.events.models import TransferState
from seqferry_shared.messaging.envelopes import EventBridgeEvent, parse_body

NOW = datetime(2025, 11, 25, tzinfo=UTC)
TASK = "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890"
ARN = f"{TASK}/execution/exec-0123456789abcdef0"


def datasync_event(resources: list[str], state: str = "SUCCESS") -> DataSyncStateChange:
    return DataSyncStateChange.model_validate({"id": "e1", "resources": resources, "detail": {"State": state}})


def test_event_carries_state_and_arn_only() -> None:
    o = event_observation(datasync_event([TASK, ARN]), NOW)
    assert o.arn == ARN
    assert o.task == TASK
    assert o.state == TransferState.SUCCESS
    assert o.counters is None
    assert o.source == Source.DATASYNC_EVENT


def test_event_without_execution_arn_is_refused() -> None:
    with pytest.raises(ValidationError, match="no DataSync task-execution ARN in resources"):
        datasync_event([TASK])


def test_describe_maps_counters_error_and_includes() -> None:
    # GIVEN a DescribeTaskExecution response of a failed execution
    response = {
        "TaskExecutionArn": ARN,
        "Status": "ERROR",
        "StartTime": NOW,
        "EstimatedFilesToTransfer": 10,
        "EstimatedBytesToTransfer": 1000,
        "FilesTransferred": 7,
        "BytesTransferred": 700,
        "FilesVerified": 6,
        "FilesSkipped": 2,
        "FilesFailed": {"Prepare": 0, "Transfer": 1, "Verify": 2, "Delete": 0},
        "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": "/a/251125*|/adhoc"}],
        "Result": {"ErrorCode": "OpNotSupp", "ErrorDetail": "operation not supported"},
    }
    # WHEN mapped
    o = describe_observation(response, NOW)
    # THEN every counter and the error are there
    assert o.state == TransferState.ERROR
    assert o.counters is not None
    assert (o.counters.files_estimated, o.counters.files_transferred, o.counters.bytes_transferred) == (10, 7, 700)
    assert (o.counters.files_verified, o.counters.files_skipped, o.counters.files_failed) == (6, 2, 3)
    assert o.error is not None
    assert o.error.code == "OpNotSupp"
    assert o.includes == ("/a/251125*|/adhoc",)
    assert o.started_at == NOW


def test_describe_of_an_emulator_without_counters() -> None:
    o = describe_observation({"TaskExecutionArn": ARN, "Status": "INITIALIZING"}, NOW)
    assert o.state == TransferState.LAUNCHING
    # An emulator's answer without counters must not wipe counters the executor reported.
    assert o.counters is None
    assert o.error is None


EVENTS = Path(__file__).parent.parent / "events"


def test_sample_event_through_the_shared_envelope_parser() -> None:
    # GIVEN the SQS body the default-bus rule delivers (the whole EventBridge event)
    envelope = parse_body((EVENTS / "datasync-task-execution-state-change.json").read_text())
    assert isinstance(envelope, EventBridgeEvent)
    event = DataSyncStateChange.model_validate(envelope.as_json())
    assert event.time is not None
    # WHEN mapped; THEN it is a state-only observation of that execution
    o = event_observation(event, event.time)
    assert o.state == TransferState.SUCCESS
    assert o.execution_id.endswith("exec-0123456789abcdef0")


def test_sample_describe_response() -> None:
    o = describe_observation(json.loads((EVENTS / "describe-task-execution.json").read_text()), NOW)
    assert o.state == TransferState.SUCCESS
    assert o.counters is not None
    assert o.counters.files_transferred == 1204
    assert o.counters.files_skipped == 310
    assert o.counters.files_failed == 0
    assert o.error is None
