"""The live view of `request --wait`: bars with files, bytes, rate and ETA on a terminal; state lines elsewhere."""

from __future__ import annotations

import io
import re

from rich.console import Console

from seqferry_cli.follow import ExecutionProgress, RequestProgress
from seqferry_cli.progress import ProgressView
from seqferry_shared.events.models import Counters, ErrorInfo, TransferState

MB = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snapshot(state: TransferState, files: int, transferred: int, *, error: ErrorInfo | None = None) -> RequestProgress:
    progress = RequestProgress("cli-1", expected_parts=1, seen=True, status="started")
    execution = ExecutionProgress("exec-0123456789abcdef0", part=0, parts=1)
    execution.observe(
        state,
        Counters(files_estimated=40, bytes_estimated=40 * MB, files_transferred=files, bytes_transferred=transferred),
        error,
        [],
    )
    progress.executions[execution.execution_id] = execution
    return progress


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_terminal_shows_files_bytes_rate_and_eta_then_the_end_state():
    # GIVEN a terminal console captured in memory and a clock the test moves
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    clock = Clock()
    with ProgressView(console, live=True, get_time=clock, auto_refresh=False) as view:
        # WHEN the request is sent, then transfers 10 MB per second for 3 seconds
        view.update(RequestProgress("cli-1", expected_parts=1))
        for second in range(4):
            view.update(snapshot(TransferState.TRANSFERRING, files=second * 10, transferred=second * 10 * MB))
            clock.now += 1
        screen = plain(out.getvalue())
        # THEN the bar shows the files, the bytes of the total, the rate and the time left
        assert "waiting for the executor to record it" in screen
        assert "part 1/1 exec-0123456789abcdef0 TRANSFERRING" in screen
        assert "30/40 files" in screen
        assert "30.0/40.0 MB" in screen
        assert "10.0 MB/s" in screen
        assert "ETA 0:00:01" in screen
        # WHEN it succeeds
        view.update(snapshot(TransferState.SUCCESS, files=40, transferred=40 * MB))
    screen = plain(out.getvalue())
    # THEN each state change was printed once, above the bars, and the last frame shows the end state
    assert screen.count("exec-0123456789abcdef0 TRANSFERRING  0/40 files") == 1
    assert "part 1/1 exec-0123456789abcdef0 SUCCESS  40/40 files  40.0 MB of 40.0 MB" in screen
    assert "40.0/40.0 MB" in screen


def test_an_error_is_shown_with_its_code_and_message():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with ProgressView(console, live=True, get_time=Clock(), auto_refresh=False) as view:
        view.update(snapshot(TransferState.ERROR, 3, 3 * MB, error=ErrorInfo(code="S3Error", message="AccessDenied")))
    assert "ERROR  3/40 files  3.0 MB of 40.0 MB  S3Error: AccessDenied" in plain(out.getvalue())


def test_a_log_gets_one_line_per_state_change_and_no_redraws():
    # GIVEN stderr is not a terminal (a CI log, a pipe)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=160)
    with ProgressView(console) as view:
        assert view.live is False
        # WHEN the same state is seen many times with moving counters
        view.update(RequestProgress("cli-1", expected_parts=1))
        view.update(RequestProgress("cli-1", expected_parts=1))
        for files in (0, 5, 10):
            view.update(snapshot(TransferState.TRANSFERRING, files=files, transferred=files * MB))
        view.update(snapshot(TransferState.SUCCESS, files=40, transferred=40 * MB))
    lines = out.getvalue().splitlines()
    # THEN one line for the wait, one per state, no escape codes
    assert lines == [
        "request cli-1: sent, waiting for the executor to record it",
        "part 1/1 exec-0123456789abcdef0 TRANSFERRING  0/40 files  0 bytes of 40.0 MB",
        "part 1/1 exec-0123456789abcdef0 SUCCESS  40/40 files  40.0 MB of 40.0 MB",
    ]
