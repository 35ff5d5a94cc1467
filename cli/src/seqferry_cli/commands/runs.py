"""`seqferry runs` and `seqferry run`: sequencing runs as the notifier sees them (its HTTP API)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Group, RenderableType
from rich.live import Live

from seqferry_cli.context import CliContext
from seqferry_cli.output import ago, fields, human_bytes, percent, styled, table
from seqferry_cli.service_api import ServiceApi


def scan_totals(run: dict[str, Any]) -> tuple[int | None, int | None]:
    """Files and bytes of the run folder in its newest scan (the latest execution that reported one)."""
    scanned = [e for e in (run.get("executions") or {}).values() if e.get("summary")]
    if not scanned:
        return None, None
    newest = max(scanned, key=lambda e: (e.get("started_at") or "", e.get("observed_at") or "", e.get("execution_id")))
    summary = newest["summary"]
    return summary.get("files_total"), summary.get("bytes_total")


def _of(total: int | None, done: int | None, render: Any = str) -> str:
    if done is None and total is None:
        return "-"
    shown = render(done or 0)
    return f"{shown} / {render(total)}" if total is not None else shown


def runs_table(items: list[dict[str, Any]], now: datetime | None = None) -> RenderableType:
    rows = []
    for view in items:
        run = view.get("run") or {}
        files, size = scan_totals(run)
        rows.append(
            [
                run.get("run_id"),
                run.get("instrument") or "?",
                styled(str(view.get("status"))),
                percent(view.get("progress")),
                _of(files, run.get("s3_files")),
                _of(size, run.get("s3_bytes"), human_bytes),
                ago(run.get("updated_at"), now),
            ]
        )
    return table(None, ["run", "instrument", "status", "in S3", "files", "bytes", "updated"], rows)


def _runs(notifier: ServiceApi, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = notifier.get("/runs", {"limit": limit}).get("items", [])
    return items


def runs(
    ctx: typer.Context,
    *,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds between refreshes.")] = 5.0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Most recent runs to show.")] = 50,
) -> None:
    """List runs: instrument, status (in_progress, completed, failed, stalled), share in S3, files, bytes.

    [bold]Examples[/bold]

      seqferry runs

      seqferry runs --watch --interval 2

      seqferry -o json runs | jq -r '.items[] | select(.status == "completed") | .run.run_id'
    """
    cli: CliContext = ctx.obj
    with cli.api("notifier") as notifier:
        if not watch:
            items = _runs(notifier, limit)
            cli.out.result({"items": items}, lambda: [runs_table(items)])
            return
        try:
            if cli.out.json:
                while True:
                    # One compact document per line: `seqferry -o json runs --watch | jq` sees a stream.
                    document = {"at": time.time(), "items": _runs(notifier, limit)}
                    cli.out.console.file.write(json.dumps(document, default=str) + "\n")
                    cli.out.console.file.flush()
                    time.sleep(interval)
            with Live(runs_table(_runs(notifier, limit)), console=cli.out.console, auto_refresh=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(runs_table(_runs(notifier, limit)), refresh=True)
        except KeyboardInterrupt:
            return  # Ctrl-C is how a watch ends


def _run_details(view: dict[str, Any]) -> Iterable[RenderableType]:
    run = view.get("run") or {}
    files, size = scan_totals(run)
    completion = run.get("completion") or {}
    pairs: list[tuple[str, Any]] = [
        ("run", run.get("run_id")),
        ("instrument", run.get("instrument") or "unknown"),
        ("status", styled(str(view.get("status")))),
        ("in S3", percent(view.get("progress"))),
        ("NAS path", run.get("nas_path")),
        ("S3", view.get("s3_uri")),
        ("files", _of(files, run.get("s3_files"))),
        ("bytes", _of(size, run.get("s3_bytes"), human_bytes)),
        ("completion marker", view.get("marker")),
        ("checksum manifest", completion.get("manifest_uri") or "written when the run is delivered"),
    ]
    if completion:
        pairs.append(("delivered", f"{completion.get('at')} ({ago(completion.get('at'))})"))
    if run.get("stalled_since"):
        pairs.append(("stalled since", run["stalled_since"]))
    if run.get("blockers"):
        pairs.append(("waiting for", "\n".join(run["blockers"])))
    if run.get("failed_executions"):
        pairs.append(("failed executions", "\n".join(run["failed_executions"])))
    yield fields(pairs)
    executions = sorted((run.get("executions") or {}).values(), key=lambda e: e.get("started_at") or "")
    if executions:
        yield table(
            "executions",
            ["execution", "state", "started", "files sent", "bytes sent", "pending"],
            (
                [
                    e.get("execution_id"),
                    styled(str(e.get("state"))),
                    ago(e.get("started_at")),
                    (e.get("summary") or {}).get("files_transferred", "-"),
                    human_bytes((e.get("summary") or {}).get("bytes_transferred")),
                    (e.get("summary") or {}).get("files_pending", "-"),
                ]
                for e in executions
            ),
        )


def run(
    ctx: typer.Context,
    *,
    run_id: Annotated[str, typer.Argument(help="Run folder name, e.g. 240802_A01934_0156_AHJF77DRX5.")],
) -> None:
    """Show one run: status, S3 location, executions, checksum manifest, what it still waits for.

    [bold]Example[/bold]

      seqferry run 240802_A01934_0156_AHJF77DRX5
    """
    cli: CliContext = ctx.obj
    with cli.api("notifier") as notifier:
        view = notifier.get(f"/runs/{quote(run_id, safe='')}")
    cli.out.result(view, lambda: [Group(*_run_details(view))])
