"""`seqferry status`: is every service ready, and how deep are the queues and dead-letter queues."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.text import Text

from seqferry_cli.context import CliContext
from seqferry_cli.errors import OutcomeError, UnavailableError
from seqferry_cli.output import styled, table
from seqferry_cli.settings import SERVICES

_DEPTHS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def _service(cli: CliContext, name: str) -> dict[str, Any]:
    url = cli.settings.url(name)
    if not url:
        return {"service": name, "url": None, "status": "not configured", "failing": {}}
    with cli.api(name) as api:
        try:
            code, body = api.probe("/readyz")
        except UnavailableError as exc:
            return {"service": name, "url": url, "status": "unreachable", "failing": {}, "error": exc.message}
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    failing = {k: v for k, v in checks.items() if v != "ok"}
    return {"service": name, "url": url, "status": "ready" if code == 200 else "not ready", "failing": failing}


def _depths(sqs: Any, name: str) -> dict[str, int] | None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_DEPTHS)["Attributes"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    return {"visible": int(attributes.get(_DEPTHS[0], 0)), "in_flight": int(attributes.get(_DEPTHS[1], 0))}


def _queue(sqs: Any, name: str, dlq_name: str) -> dict[str, Any]:
    work = _depths(sqs, name)
    dead = _depths(sqs, dlq_name)
    return {
        "queue": name,
        "exists": work is not None,
        "messages": work["visible"] if work else None,
        "in_flight": work["in_flight"] if work else None,
        "dlq": dlq_name,
        "dlq_exists": dead is not None,
        "dlq_messages": dead["visible"] + dead["in_flight"] if dead else None,
    }


def _render(services: list[dict[str, Any]], queues: list[dict[str, Any]]) -> Iterable[RenderableType]:
    yield table(
        "services",
        ["service", "status", "url", "failing checks"],
        (
            [
                s["service"],
                styled(s["status"]),
                s["url"] or "-",
                s.get("error") or "; ".join(f"{k}: {v}" for k, v in s["failing"].items()),
            ]
            for s in services
        ),
    )
    if not queues:
        return
    yield table(
        "queues",
        ["queue", "messages", "in flight", "dead letters"],
        ([q["queue"], _count(q["exists"], q["messages"]), q["in_flight"], _dead(q)] for q in queues),
    )


def _count(exists: bool, value: int | None) -> RenderableType:
    return Text(str(value)) if exists else styled("missing")


def _dead(queue: dict[str, Any]) -> RenderableType:
    if not queue["dlq_exists"]:
        return styled("missing")
    count = queue["dlq_messages"] or 0
    return Text(str(count), style="red" if count else "")


def status(
    ctx: typer.Context,
    *,
    services_only: Annotated[bool, typer.Option("--services-only", help="Only the services' readiness.")] = False,
) -> None:
    """Readiness of every service (/readyz) and depth of every queue and dead-letter queue.

    Exit 1 when a service is not ready or unreachable, a queue is missing, or a dead-letter queue holds messages.

    [bold]Examples[/bold]

      seqferry status

      seqferry -o json status | jq '.queues[] | {queue, dlq_messages}'
    """
    cli: CliContext = ctx.obj
    services = [_service(cli, name) for name in SERVICES]
    queues: list[dict[str, Any]] = []
    if not services_only:
        sqs = cli.aws.client("sqs")
        queues = [_queue(sqs, spec.name, spec.dlq_name) for spec in cli.settings.names.queues]
    cli.out.result({"services": services, "queues": queues}, lambda: _render(services, queues))
    problems = [f"{s['service']}: {s['status']}" for s in services if s["status"] in ("not ready", "unreachable")]
    problems += [f"queue {q['queue']} missing" for q in queues if not q["exists"]]
    problems += [f"dead-letter queue {q['dlq']} missing" for q in queues if not q["dlq_exists"]]
    problems += [f"{q['dlq']}: {q['dlq_messages']} message(s)" for q in queues if q["dlq_messages"]]
    if problems:
        raise OutcomeError("not everything is well", details=problems)
