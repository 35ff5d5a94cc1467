"""Where results go: tables for people, JSON for scripts; progress and messages always on stderr.

With ``--output json`` stdout carries exactly one JSON document per result (one per refresh with ``--watch``),
never colour codes or progress, so ``seqferry ... -o json | jq`` works whatever the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from seqferry_cli.settings import OutputMode


def human_bytes(value: int | None) -> str:
    return "-" if value is None else decimal(value)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def ago(when: str | datetime | None, now: datetime | None = None) -> str:
    """'5s ago', '3m ago', '2h ago', '4d ago' from an ISO time stamp."""
    if when is None:
        return "-"
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


STYLES = {
    "SUCCESS": "green",
    "completed": "green",
    "ok": "green",
    "ready": "green",
    "ERROR": "red",
    "failed": "red",
    "error": "red",
    "rejected": "red",
    "unreachable": "red",
    "not ready": "red",
    "stalled": "yellow",
    "warning": "yellow",
    "partially_accepted": "yellow",
    "missing": "red",
}


def styled(value: str) -> Text:
    """A state or level, coloured by what it means."""
    return Text(value, style=STYLES.get(value, ""))


def cell(value: Any) -> RenderableType:
    """Table cells are literal text: names and reasons from the NAS or a manifest may contain '[' markup."""
    if isinstance(value, Text | Table):
        return value
    return Text("-" if value is None else str(value))


@dataclass
class Output:
    mode: OutputMode
    console: Console
    """stdout: results."""
    err: Console
    """stderr: progress, messages, errors."""

    @property
    def json(self) -> bool:
        return self.mode == "json"

    def result(self, data: Any, render: Callable[[], Iterable[RenderableType]]) -> None:
        """One result: ``data`` as JSON, or the renderables ``render`` builds."""
        if self.json:
            self.console.file.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
            self.console.file.flush()
            return
        for renderable in render():
            self.console.print(renderable)

    def message(self, text: str, style: str = "") -> None:
        """A note for the person at the terminal (stderr; never part of the result). Literal text, no markup."""
        self.err.print(Text(text, style=style), highlight=False)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        # The first column names the row (a run, an execution): kept whole, the others wrap.
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        grid.add_row(*(cell(value) for value in row))
    return grid


def fields(pairs: Sequence[tuple[str, Any]]) -> Table:
    """Two columns of name and value, for one record."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(name, cell(value))
    return grid
