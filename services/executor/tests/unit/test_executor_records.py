"""Execution records and state events; DataSync response mapping; executor settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from pydantic import ValidationError

from seqferry_executor.backends.base import BackendError
from seqferry_executor.backends.datasync import (
    OVERRIDE_OPTIONS,
    DataSyncBackend,
    backend_error,
    parse_state,
    status_of,
)
from seqferry_executor.backends.factory import build_backend
from seqferry_executor.domain.executions import ExecutionRecord, observe, state_event, state_event_id
from seqferry_executor.settings import ExecutorSettings
from seqferry_shared.aws import ClientFactory
from seqferry_shared.events.models import Counters, ErrorInfo, FileProblem, TransferState, Trigger

NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)
DATASYNC = botocore.session.get_session().get_service_model("datasync")
TASK_ARN = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"


def record() -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=f"{TASK_ARN}/execution/exec-0123456789abcdef1",
        backend="datasync",
        task="sequencers",
        trigger=Trigger(kind="request", id="r1"),
        correlation_id="r1",
        seq=1,
        part=0,
        parts=1,
        includes=["/adhoc"],
        started_at=NOW,
        updated_at=NOW,
    )


def test_state_changes_are_events_counter_moves_are_not():
    # GIVEN a new execution
    rec = record()

    # WHEN it launches, then counts files within the same state, then succeeds
    rec, changed1 = observe(rec, state=TransferState.LAUNCHING, counters=Counters(), runs=[], error=None, now=NOW)
    rec, changed2 = observe(
        rec, state=TransferState.LAUNCHING, counters=Counters(files_estimated=3), runs=[], error=None, now=NOW
    )
    done = NOW + timedelta(minutes=5)
    rec, changed3 = observe(
        rec, state=TransferState.SUCCESS, counters=Counters(files_verified=3), runs=[], error=None, now=done
    )

    # THEN only the state changes are events; the record keeps the latest counters and the history
    assert (changed1, changed2, changed3) == (True, False, True)
    assert rec.counters.files_verified == 3
    assert rec.ended_at == done
    assert [h.state for h in rec.history] == [TransferState.LAUNCHING, TransferState.SUCCESS]


def test_terminal_records_never_change():
    rec, _ = observe(record(), state=TransferState.ERROR, counters=Counters(), runs=[], error=None, now=NOW)

    again, changed = observe(rec, state=TransferState.SUCCESS, counters=Counters(), runs=[], error=None, now=NOW)

    assert again is rec
    assert not changed


def test_state_event_carries_correlation_counters_and_a_stable_id():
    rec, _ = observe(
        record(),
        state=TransferState.ERROR,
        counters=Counters(files_failed=2),
        runs=[],
        error=ErrorInfo(code="E", message="m"),
        now=NOW,
    )

    event = state_event(rec)

    assert event.meta.correlation_id == "r1"
    assert event.meta.event_id == state_event_id(rec.execution_id, TransferState.ERROR)
    assert state_event(rec).meta.event_id == event.meta.event_id
    assert event.counters.files_failed == 2
    assert event.error == ErrorInfo(code="E", message="m")
    assert state_event(rec, with_includes=False).includes == []


def test_per_file_problems_reach_the_state_event():
    # GIVEN a local pass that met a FIFO (its path escaped, as every reported path is)
    problem = FileProblem(path="/seq/run/pipe%0A", reason="FIFO (named pipe): not a regular file, not read")
    rec, _ = observe(record(), state=TransferState.TRANSFERRING, counters=Counters(), runs=[], error=None, now=NOW)
    # WHEN the problem shows up within the state THEN the record keeps it (no event: the state did not change)
    rec, changed = observe(
        rec, state=TransferState.TRANSFERRING, counters=Counters(files_failed=1), runs=[], error=None, now=NOW,
        problems=[problem],
    )  # fmt: skip
    assert (changed, rec.problems) == (False, [problem])
    # ... and the terminal state change carries it to every consumer
    rec, changed = observe(
        rec, state=TransferState.SUCCESS, counters=Counters(files_failed=1), runs=[], error=None, now=NOW,
        problems=[problem],
    )  # fmt: skip
    assert changed
    assert state_event(rec).problems == [problem]
    assert state_event(rec).model_dump(mode="json")["problems"] == [problem.model_dump()]


def describe_response(**fields: object) -> dict[str, object]:
    response: dict[str, object] = {
        "TaskExecutionArn": f"{TASK_ARN}/execution/exec-0123456789abcdef1",
        "Status": "TRANSFERRING",
        "StartTime": NOW,
        "EstimatedFilesToTransfer": 10,
        "EstimatedBytesToTransfer": 1000,
        "FilesTransferred": 4,
        "BytesTransferred": 400,
        "FilesVerified": 3,
        "FilesSkipped": 1,
        "FilesFailed": {"Prepare": 0, "Transfer": 1, "Verify": 1},
    }
    response.update(fields)
    report = ParamValidator().validate(response, DATASYNC.operation_model("DescribeTaskExecution").output_shape)
    assert not report.has_errors(), report.generate_report()
    return response


def test_describe_response_maps_to_status_and_counters():
    status = status_of(describe_response())

    assert status.state is TransferState.TRANSFERRING
    assert status.counters == Counters(
        files_estimated=10,
        bytes_estimated=1000,
        files_transferred=4,
        bytes_transferred=400,
        files_verified=3,
        files_skipped=1,
        files_failed=2,
    )
    assert status.error is None


def test_error_result_maps_to_error_info():
    status = status_of(describe_response(Status="ERROR", Result={"ErrorCode": "PermissionDenied", "ErrorDetail": "x"}))

    assert status.state is TransferState.ERROR
    assert status.error == ErrorInfo(code="PermissionDenied", message="x")


def test_statuses_of_the_model_all_map_and_emulator_aliases_too():
    for status in DATASYNC.shape_for("TaskExecutionStatus").enum:
        assert parse_state(status).value == status
    assert parse_state("INITIALIZING") is TransferState.LAUNCHING  # moto's first status
    with pytest.raises(BackendError) as caught:
        parse_state("WEIRD")
    assert caught.value.retryable


def test_override_options_are_the_reference_options_and_valid_for_the_model():
    options = DATASYNC.shape_for("Options")

    assert OVERRIDE_OPTIONS == {
        "TransferMode": "CHANGED",
        "VerifyMode": "ONLY_FILES_TRANSFERRED",
        "LogLevel": "TRANSFER",
        "Atime": "BEST_EFFORT",
        "Mtime": "PRESERVE",
    }
    for name, value in OVERRIDE_OPTIONS.items():
        assert value in options.members[name].enum


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ThrottlingException", 400, True),
        ("InternalException", 500, True),
        ("InvalidRequestException", 400, False),
        ("SomethingElse", 503, True),
    ],
)
def test_client_errors_map_to_backend_errors(code: str, status: int, retryable: bool):
    exc = ClientError(
        {"Error": {"Code": code, "Message": "msg"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "StartTaskExecution",
    )

    error = backend_error(exc)

    assert (error.code, error.message, error.retryable) == (code, "msg", retryable)


def test_settings_task_arns_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    other = TASK_ARN.replace("0123456789abcdef0", "0123456789abcdef9")
    monkeypatch.setenv("SEQFERRY_BACKEND", "datasync")
    monkeypatch.setenv("SEQFERRY_DATASYNC_TASK_ARNS", f"sequencers={TASK_ARN}, archive={other}")

    settings = ExecutorSettings()

    assert settings.datasync_task_arns == {"sequencers": TASK_ARN, "archive": other}
    assert settings.poll_interval == 15.0
    assert settings.roots[-1] == "/adhoc"
    monkeypatch.setenv("SEQFERRY_DATASYNC_TASK_ARNS", f'{{"sequencers": "{TASK_ARN}"}}')
    assert ExecutorSettings().datasync_task_arns == {"sequencers": TASK_ARN}


def test_settings_defaults_and_refusals(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SEQFERRY_BACKEND", raising=False)
    monkeypatch.delenv("SEQFERRY_DATASYNC_TASK_ARNS", raising=False)

    settings = ExecutorSettings()

    assert (settings.backend, settings.poll_interval, settings.http_port) == ("local", 0.5, 8082)
    assert settings.default_task == "sequencers"
    with pytest.raises(ValidationError, match="at least one task"):
        ExecutorSettings(backend="datasync")
    with pytest.raises(ValidationError, match="not a DataSync task ARN"):
        ExecutorSettings(backend="datasync", datasync_task_arns={"s": "arn:aws:s3:::bucket"})
    with pytest.raises(ValidationError, match="name=arn"):
        ExecutorSettings(backend="datasync", datasync_task_arns="justaname")


async def test_factory_builds_the_datasync_backend_with_its_tasks():
    settings = ExecutorSettings(
        environment="test",
        backend="datasync",
        datasync_task_arns={"sequencers": TASK_ARN},
        datasync_endpoint_url="http://127.0.0.1:9",
    )

    backend = await build_backend(settings, ClientFactory(settings))
    try:
        assert isinstance(backend, DataSyncBackend)
        assert backend.tasks == frozenset({"sequencers"})
        with pytest.raises(BackendError, match="no DataSync task configured for 'other'"):
            backend.task_arn("other")
    finally:
        await backend.close()
