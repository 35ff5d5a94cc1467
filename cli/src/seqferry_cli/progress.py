"""The live view of a request: one progress bar per execution (files, bytes, rate, ETA) and a line per state change.

On a terminal the bars redraw in place; anywhere else (a CI log, a pipe) only the state-change lines are printed,
so logs stay readable. Rate and ETA come from rich's own estimate over the byte counter's recent samples.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from seqferry_cli.follow import ExecutionProgress, RequestProgress
from seqferry_shared.events.models import TransferState

_STATE_STYLE = {TransferState.SUCCESS: "green", TransferState.ERROR: "red"}


def _label(execution: ExecutionProgress) -> str:
    part = f"part {execution.part + 1}/{execution.parts} " if execution.part is not None and execution.parts else ""
    state = execution.state.value if execution.state else "STARTING"
    return f"{part}{execution.execution_id[-24:]} {state}"


def _files(execution: ExecutionProgress) -> str:
    c = execution.counters
    total = f"/{c.files_estimated}" if c.files_estimated else ""
    verified = f", {c.files_verified} verified" if c.files_verified else ""
    failed = f", {c.files_failed} failed" if c.files_failed else ""
    return f"{c.files_transferred}{total} files{verified}{failed}"


def state_line(execution: ExecutionProgress) -> Text:
    """One line per state change, e.g. ``exec-… TRANSFERRING  12/40 files  1.2 MB of 4.0 MB``."""
    c = execution.counters
    line = Text()
    line.append(_label(execution), style=_STATE_STYLE.get(execution.state, "") if execution.state else "")
    line.append(f"  {_files(execution)}  {decimal(c.bytes_transferred)}")
    if c.bytes_estimated:
        line.append(f" of {decimal(c.bytes_estimated)}")
    if execution.error is not None:
        line.append(f"  {execution.error.code}: {execution.error.message}", style="red")
    return line


class ProgressView:
    """Renders :class:`RequestProgress` snapshots on ``console`` (stderr in the CLI)."""

    def __init__(
        self,
        console: Console,
        *,
        live: bool | None = None,
        get_time: Callable[[], float] | None = None,
        auto_refresh: bool = True,
    ) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self._auto_refresh = auto_refresh
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[files]}"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                get_time=get_time,
                auto_refresh=auto_refresh,
                transient=False,
            )
        self._tasks: dict[str, TaskID] = {}
        self._states: dict[str, TransferState | None] = {}
        self._waiting: TaskID | None = None
        self._waiting_text = ""

    def __enter__(self) -> ProgressView:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _print(self, text: Text) -> None:
        # Not hard-wrapped: a log line stays one line whatever the width.
        self.console.print(text, highlight=False, soft_wrap=True)

    def _status(self, progress: RequestProgress) -> str:
        if not progress.seen:
            return f"request {progress.request_id}: sent, waiting for the executor to record it"
        return f"request {progress.request_id}: {progress.status}, waiting for its first execution"

    def update(self, progress: RequestProgress) -> None:
        if not progress.executions and not progress.rejected:
            text = self._status(progress)
            if self._progress is not None:
                if self._waiting is None:
                    self._waiting = self._progress.add_task(text, total=None, files="")
                else:
                    self._progress.update(self._waiting, description=text)
            elif text != self._waiting_text:
                self._print(Text(text))
            self._waiting_text = text
        elif self._waiting is not None and self._progress is not None:
            self._progress.remove_task(self._waiting)
            self._waiting = None
        for execution in progress.ordered():
            self._show(execution)
        if self._progress is not None and not self._auto_refresh:
            self._progress.refresh()

    def _show(self, execution: ExecutionProgress) -> None:
        key = execution.execution_id
        changed = key not in self._states or self._states[key] != execution.state
        self._states[key] = execution.state
        if self._progress is not None:
            counters = execution.counters
            description = _label(execution)
            total = counters.bytes_estimated or None
            task = self._tasks.get(key)
            if task is None:
                self._tasks[key] = self._progress.add_task(
                    description, total=total, completed=counters.bytes_transferred, files=_files(execution)
                )
            else:
                self._progress.update(
                    task,
                    description=description,
                    total=total,
                    completed=counters.bytes_transferred,
                    files=_files(execution),
                )
            if execution.terminal:
                self._progress.stop_task(self._tasks[key])
        if changed:
            # Above the bars on a terminal, as plain lines elsewhere: the history of states stays readable.
            self._print(state_line(execution))
