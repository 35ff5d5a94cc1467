"""Following a request: the fold of observations, when it is finished, and the wait limits."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from seqferry_cli.commands.transfers import _finish
from seqferry_cli.context import CliContext
from seqferry_cli.errors import ExitCode, InvalidInputError, OutcomeError, WaitTimeoutError
from seqferry_cli.follow import ExecutionProgress, RequestProgress, follow
from seqferry_cli.output import Output
from seqferry_cli.settings import CliSettings
from seqferry_shared.events.models import Counters, ErrorInfo, TransferState

S = TransferState


def observed(execution: ExecutionProgress, *states: TransferState) -> ExecutionProgress:
    for n, state in enumerate(states):
        execution.observe(state, Counters(files_transferred=n), None, [])
    return execution


def test_states_never_move_backwards_and_an_end_is_final():
    # GIVEN observations that arrive out of order and repeated (SQS, several pollers)
    execution = observed(ExecutionProgress("e"), S.TRANSFERRING, S.LAUNCHING, S.VERIFYING, S.SUCCESS, S.ERROR)
    # THEN the state is the furthest seen, and the first end state stays
    assert execution.state == S.SUCCESS
    assert execution.counters.files_transferred == 3


def test_finished_needs_every_part_to_end():
    progress = RequestProgress("r", expected_parts=2, seen=True)
    progress.executions["a"] = observed(ExecutionProgress("a", part=0, parts=2), S.SUCCESS)
    assert not progress.finished
    assert progress.outcome == "RUNNING"
    progress.executions["b"] = observed(ExecutionProgress("b", part=1, parts=2), S.TRANSFERRING)
    assert not progress.finished
    progress.executions["b"].observe(S.ERROR, Counters(), ErrorInfo(code="X", message="y"), [])
    assert progress.finished
    assert progress.outcome == "ERROR"
    assert [e.execution_id for e in progress.ordered()] == ["a", "b"]


def test_a_rejection_finishes_the_request():
    progress = RequestProgress("r", rejected=True, reasons=["include #1 '/etc': path is outside the allowed roots /a"])
    assert progress.finished
    assert progress.outcome == "REJECTED"
    assert progress.to_json()["reasons"] == ["include #1 '/etc': path is outside the allowed roots /a"]


class Script:
    """Plays back snapshots, one per poll (the follow loop's contract), and counts the waits."""

    def __init__(self, *snapshots: RequestProgress) -> None:
        self.snapshots = list(snapshots)
        self.waits: list[float] = []

    def poll(self, wait_s: float) -> RequestProgress:
        self.waits.append(wait_s)
        return self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]


class Clock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_follow_returns_the_finished_request_and_shows_every_snapshot():
    done = RequestProgress("r", expected_parts=1, seen=True)
    done.executions["a"] = observed(ExecutionProgress("a"), S.SUCCESS)
    script = Script(RequestProgress("r", expected_parts=1), RequestProgress("r", expected_parts=1, seen=True), done)
    shown: list[RequestProgress] = []
    assert follow(script, shown.append, interval_s=0.5, timeout_s=None) is done
    assert len(shown) == 3
    assert script.waits == [0.5, 0.5, 0.5]


def test_timeout_says_the_transfer_goes_on_and_how_to_follow_it_again():
    running = RequestProgress("cli-42", expected_parts=1, seen=True)
    with pytest.raises(WaitTimeoutError) as caught:
        follow(Script(running), lambda _: None, interval_s=1, timeout_s=10, clock=Clock(step=3))
    assert caught.value.exit_code == ExitCode.TIMEOUT == 4
    assert caught.value.hint == "follow it again with: seqferry wait cli-42"


def test_a_request_the_executor_never_recorded_is_an_error_when_a_limit_is_set():
    unseen = RequestProgress("typo", expected_parts=None)
    with pytest.raises(InvalidInputError, match="the executor has no request 'typo'"):
        follow(Script(unseen), lambda _: None, interval_s=1, timeout_s=None, unseen_limit_s=30, clock=Clock(step=10))


def finished_with(state: TransferState, error: ErrorInfo | None = None) -> RequestProgress:
    progress = RequestProgress("cli-7", expected_parts=1, seen=True, status="started")
    progress.executions["exec-1"] = ExecutionProgress("exec-1", part=0, parts=1)
    progress.executions["exec-1"].observe(state, Counters(files_transferred=2), error, [])
    return progress


def test_the_outcome_decides_the_exit_code_after_the_result_is_printed():
    def context() -> tuple[CliContext, io.StringIO]:
        out = io.StringIO()
        return CliContext(CliSettings(), Output("json", Console(file=out), Console(file=io.StringIO()))), out

    cli, out = context()
    _finish(cli, finished_with(S.SUCCESS), {"request_id": "cli-7"})
    assert json.loads(out.getvalue())["outcome"] == "SUCCESS"

    cli, out = context()
    with pytest.raises(OutcomeError) as caught:
        _finish(cli, finished_with(S.ERROR, ErrorInfo(code="S3Error", message="AccessDenied")), {})
    assert caught.value.exit_code == ExitCode.FAILED == 1
    assert caught.value.details == ["exec-1: S3Error: AccessDenied"]
    assert json.loads(out.getvalue())["executions"][0]["error"] == {"code": "S3Error", "message": "AccessDenied"}

    cli, out = context()
    rejected = RequestProgress("cli-7", rejected=True, reasons=["include #1 '/etc': path is outside the allowed roots"])
    with pytest.raises(InvalidInputError) as refused:
        _finish(cli, rejected, {})
    assert refused.value.exit_code == 2
    assert json.loads(out.getvalue())["outcome"] == "REJECTED"
