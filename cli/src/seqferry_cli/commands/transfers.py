"""`seqferry request` and `seqferry wait`: ask for a transfer on the bus, follow it to SUCCESS or ERROR."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.console import RenderableType

from seqferry_cli.context import CliContext
from seqferry_cli.errors import InvalidInputError, OutcomeError, UnavailableError
from seqferry_cli.follow import EventFollower, Follower, HttpFollower, RequestProgress, follow
from seqferry_cli.output import fields, human_bytes, styled, table
from seqferry_cli.progress import ProgressView
from seqferry_cli.settings import FollowMode
from seqferry_shared.events.models import Meta, TransferRequested
from seqferry_shared.patterns import split_filter
from seqferry_shared.validation import Accepted, validate_transfer

# Request ids travel in URLs and rule patterns: keep them to characters that need no escaping anywhere.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_EVENT_NAMESPACE = uuid.UUID("2f7d0c1e-5b8a-4c57-9e0e-3c1d6a4b7f21")
# `wait` on an id the executor never recorded: a typo, or a request older than the executor keeps records.
UNSEEN_LIMIT_S = 30.0

Interval = Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between looks at the executor.")]
Timeout = Annotated[
    float | None,
    typer.Option("--timeout", min=1, help="Give up waiting after this many seconds (exit 4; the transfer goes on)."),
]


def _accepted(task: str | None, paths: list[str], roots: list[str]) -> Accepted:
    # The executor's own check (seqferry_shared.validation): same rules, same messages, nothing sent if it fails.
    verdict = validate_transfer(
        task=task, includes=paths, roots=roots, default_task=task or "default", known_tasks=None
    )
    if not isinstance(verdict, Accepted):
        raise InvalidInputError(
            f"request not sent: {len(verdict.reasons)} problem(s)",
            details=verdict.reasons,
            hint="allowed roots: " + ", ".join(roots) + " (SEQFERRY_SEQUENCER_PATHS, SEQFERRY_ADHOC_PATH)",
        )
    return verdict


def _publish(cli: CliContext, detail: TransferRequested) -> None:
    from seqferry_shared.messaging.publisher import put_events_entry  # noqa: PLC0415 - pulls in telemetry

    try:
        entry = put_events_entry(detail, bus=cli.settings.names.bus, source=cli.settings.source)
    except ValueError as exc:
        raise InvalidInputError(
            f"request not sent: {exc}", hint="split the paths over several requests, or use a manifest"
        ) from exc
    response = cli.aws.client("events").put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        failure = response["Entries"][0]
        raise UnavailableError(
            f"EventBridge did not accept the request: {failure.get('ErrorCode')}: {failure.get('ErrorMessage')}",
            hint=f"the caller needs events:PutEvents on bus {cli.settings.names.bus} with source {cli.settings.source}",
        )


def _summary(progress: RequestProgress) -> Iterable[RenderableType]:
    yield fields(
        [
            ("request", progress.request_id),
            ("outcome", styled(progress.outcome)),
            ("executions", str(len(progress.executions))),
        ]
    )
    if progress.reasons:
        yield table("rejected", ["reason"], ([r] for r in progress.reasons))
    if progress.executions:
        yield table(
            "executions",
            ["execution", "state", "files", "bytes", "error"],
            (
                [
                    e.execution_id,
                    styled(e.state.value if e.state else "-"),
                    f"{e.counters.files_transferred}/{e.counters.files_estimated}",
                    human_bytes(e.counters.bytes_transferred),
                    f"{e.error.code}: {e.error.message}" if e.error else "",
                ]
                for e in progress.ordered()
            ),
        )
    runs = [(e, r) for e in progress.ordered() for r in e.runs]
    if runs:
        yield table(
            "runs",
            ["run", "files", "bytes", "s3 prefix"],
            (
                [r.run_id, f"{r.files_transferred}/{r.files_total}", human_bytes(r.bytes_total), r.s3_prefix]
                for _, r in runs
            ),
        )


def _finish(cli: CliContext, progress: RequestProgress, extra: dict[str, Any]) -> None:
    cli.out.result({**extra, **progress.to_json()}, lambda: _summary(progress))
    if progress.outcome == "REJECTED":
        raise InvalidInputError(f"the executor rejected request {progress.request_id}", details=progress.reasons)
    if progress.outcome == "ERROR":
        errors = [f"{e.execution_id}: {e.error.code}: {e.error.message}" for e in progress.ordered() if e.error]
        raise OutcomeError(f"request {progress.request_id} ended in ERROR", details=errors)


def _report_leftovers(cli: CliContext, events: EventFollower) -> None:
    for problem in events.cleanup_errors:
        cli.out.message(f"{problem} (named {events.name}; delete it by hand)", style="yellow")


def _watch(cli: CliContext, follower: Follower, *, interval_s: float, timeout_s: float | None) -> RequestProgress:
    with ProgressView(cli.out.err) as view:
        return follow(follower, view.update, interval_s=interval_s, timeout_s=timeout_s)


def request(
    ctx: typer.Context,
    *,
    paths: Annotated[
        list[str],
        typer.Argument(help="NAS paths (include patterns): absolute, '*' only at the end, under an allowed root."),
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept with the request).", max=1024)] = "",
    task: Annotated[str | None, typer.Option("--task", help="Transfer task; the executor's default if unset.")] = None,
    requested_by: Annotated[
        str | None, typer.Option("--requested-by", help="Who asks (default user@host, SEQFERRY_REQUESTED_BY).")
    ] = None,
    request_id: Annotated[
        str | None,
        typer.Option("--request-id", help="Your id for the request (a retry with the same id transfers once)."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow it with a progress bar until it ends.")] = False,
    follow_mode: Annotated[
        FollowMode | None,
        typer.Option("--follow", help="How --wait follows: http (executor API) or events (temporary rule + queue)."),
    ] = None,
    interval: Interval = 1.0,
    timeout: Timeout = None,
) -> None:
    """Ask seqferry to transfer NAS paths (publishes [bold]Transfer Requested[/bold] on the bus).

    Paths are checked first with the executor's own rules: a bad one fails here, exit 2, nothing sent.

    [bold]Examples[/bold]

      seqferry request /sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE --reason "after NAS outage"

      seqferry request '/sequencers/incoming/nextseq/2511*' --wait

      seqferry -o json request /adhoc/reanalysis --wait --timeout 3600 | jq .outcome
    """
    cli: CliContext = ctx.obj
    settings = cli.settings
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise InvalidInputError("--request-id: use 1 to 128 letters, digits, '.', '_', ':' or '-'")
    accepted = _accepted(task, paths, settings.roots)
    rid = request_id or f"cli-{uuid.uuid4().hex}"
    event_id = uuid.uuid5(_EVENT_NAMESPACE, rid) if request_id else uuid.uuid4()
    detail = TransferRequested(
        meta=Meta(event_id=event_id, correlation_id=rid),
        request_id=rid,
        task=task,
        includes=list(paths),
        reason=reason,
        requested_by=requested_by or settings.requested_by,
    )
    sent = {"request_id": rid, "event_id": str(event_id), "bus": settings.names.bus, "includes": list(paths)}
    mode = follow_mode or settings.follow
    if not wait:
        _publish(cli, detail)
        cli.out.result(
            {**sent, "outcome": "SENT"},
            lambda: [fields([("request", rid), ("bus", settings.names.bus), ("paths", "\n".join(paths))])],
        )
        cli.out.message(f"follow it with: seqferry wait {rid}")
        return
    parts = len(split_filter(accepted.includes))
    with contextlib.ExitStack() as stack:
        follower: Follower
        if mode == "events":
            events = stack.enter_context(EventFollower(cli.aws, settings.names, rid, expected_parts=parts))
            stack.callback(_report_leftovers, cli, events)
            follower = events
        else:
            executor = stack.enter_context(cli.api("executor"))
            # Fail before publishing when the executor cannot be reached: --wait could not keep its promise.
            executor.probe("/healthz")
            follower = HttpFollower(executor, rid, expected_parts=parts)
        _publish(cli, detail)
        progress = _watch(cli, follower, interval_s=interval, timeout_s=timeout)
    _finish(cli, progress, sent)


def wait(
    ctx: typer.Context,
    *,
    request_id: Annotated[str, typer.Argument(help="Request id (printed by `seqferry request`).")],
    interval: Interval = 1.0,
    timeout: Timeout = None,
) -> None:
    """Follow an earlier request until it ends (through the executor's HTTP API).

    [bold]Example[/bold]

      seqferry wait cli-5f0c3b9e8d7a4c1b9a2e6f3d4c5b6a79
    """
    cli: CliContext = ctx.obj
    with cli.api("executor") as executor:
        follower = HttpFollower(executor, request_id)
        with ProgressView(cli.out.err) as view:
            progress = follow(
                follower, view.update, interval_s=interval, timeout_s=timeout, unseen_limit_s=UNSEEN_LIMIT_S
            )
    _finish(cli, progress, {})
