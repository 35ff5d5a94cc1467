"""Following a ``Transfer Requested`` to its end, from the public surface only.

Two ways, one picture (:class:`RequestProgress`):

- :class:`HttpFollower` (default) reads the executor's read-only HTTP API: ``GET /requests/{id}`` (queued, started,
  rejected with reasons, the executions it caused) and ``GET /executions/{id}`` (state, counters, part of parts,
  error, runs). It is the executor's persisted record, so it has live counters between state changes, sees a
  request that was rejected before the CLI looked, and can be re-attached to later (``seqferry wait``). AWS
  permissions: only ``events:PutEvents``; it needs the executor's URL.
- :class:`EventFollower` subscribes a temporary SQS queue to the bus with a rule matching
  ``Transfer Execution State Changed`` whose ``meta.correlation_id`` is the request id, created before the request
  is published and deleted afterwards (also on Ctrl-C and SIGTERM). It needs no network path to the services, but
  permissions to create and delete a rule and a queue, and it sees counters only at state changes.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from pydantic import ValidationError

from seqferry_cli.errors import InvalidInputError, WaitTimeoutError
from seqferry_shared.events.models import (
    Counters,
    ErrorInfo,
    RunSummary,
    TransferExecutionStateChanged,
    TransferState,
)
from seqferry_shared.resources import ResourceNames

if TYPE_CHECKING:
    from seqferry_cli.aws import Aws
    from seqferry_cli.service_api import ServiceApi

REJECTED_PREFIX = "rejected-request-"
INVALID_REQUEST = "InvalidTransferRequest"


@dataclass
class ExecutionProgress:
    execution_id: str
    state: TransferState | None = None
    part: int | None = None
    parts: int | None = None
    counters: Counters = field(default_factory=Counters)
    error: ErrorInfo | None = None
    runs: list[RunSummary] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state is not None and self.state.terminal

    def observe(
        self,
        state: TransferState | None,
        counters: Counters,
        error: ErrorInfo | None,
        runs: list[RunSummary],
    ) -> None:
        """Apply one observation; out-of-order and repeated observations never move the state backwards."""
        if self.terminal:
            return
        if state is not None and self.state is not None and state.rank < self.state.rank:
            return
        if state is not None:
            self.state = state
        self.counters = counters
        self.error = error or self.error
        if runs:
            self.runs = runs

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "state": self.state.value if self.state else None,
            "part": self.part,
            "parts": self.parts,
            "counters": self.counters.model_dump(),
            "error": self.error.model_dump() if self.error else None,
            "runs": [r.model_dump() for r in self.runs],
        }


@dataclass
class RequestProgress:
    request_id: str
    expected_parts: int | None = None
    """Executions the request runs as (from the executor's record, or computed as the executor splits)."""
    seen: bool = False
    """The executor has recorded the request."""
    status: str = "sent"
    rejected: bool = False
    reasons: list[str] = field(default_factory=list)
    executions: dict[str, ExecutionProgress] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        if self.rejected:
            return True
        parts = self.expected_parts
        done = [e for e in self.executions.values() if e.terminal]
        return parts is not None and len(done) >= parts

    @property
    def outcome(self) -> str:
        if self.rejected:
            return "REJECTED"
        if not self.finished:
            return "RUNNING"
        if any(e.state == TransferState.ERROR for e in self.executions.values()):
            return "ERROR"
        return "SUCCESS"

    def ordered(self) -> list[ExecutionProgress]:
        """Executions by part (as the executor ran them), then in the order they were seen."""
        seen = list(self.executions.values())
        return sorted(seen, key=lambda e: (e.part if e.part is not None else len(seen), seen.index(e)))

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "outcome": self.outcome,
            "status": self.status,
            "reasons": list(self.reasons),
            "parts": self.expected_parts,
            "executions": [e.to_json() for e in self.ordered()],
        }


class Follower(Protocol):
    def poll(self, wait_s: float) -> RequestProgress:
        """The request's progress after waiting at most ``wait_s`` for news."""
        ...


class HttpFollower:
    """Reads the executor's request and execution records (the source of truth, with live counters)."""

    def __init__(
        self,
        executor: ServiceApi,
        request_id: str,
        *,
        expected_parts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = executor
        self._progress = RequestProgress(request_id, expected_parts=expected_parts)
        self._sleep = sleep
        self._polled = False

    def poll(self, wait_s: float) -> RequestProgress:
        if self._polled:
            self._sleep(wait_s)
        self._polled = True
        progress = self._progress
        record = self._api.get(f"/requests/{quote(progress.request_id, safe='')}", missing_ok=True)
        if record is None:
            return progress
        progress.seen = True
        progress.status = str(record.get("status", "unknown"))
        if progress.status == "rejected":
            progress.rejected = True
            progress.reasons = [str(r) for r in record.get("reasons", [])]
            return progress
        for execution_id in record.get("executions", []):
            known = progress.executions.get(execution_id)
            if known is not None and known.terminal:
                continue
            data = self._api.get(f"/executions/{quote(str(execution_id), safe='/:')}", missing_ok=True)
            if data is None:
                continue
            execution = progress.executions.setdefault(execution_id, ExecutionProgress(execution_id))
            execution.part = data.get("part")
            execution.parts = data.get("parts")
            if execution.parts:
                progress.expected_parts = int(execution.parts)
            state = data.get("state")
            execution.observe(
                TransferState(state) if state else None,
                Counters.model_validate(data.get("counters") or {}),
                ErrorInfo.model_validate(data["error"]) if data.get("error") else None,
                [RunSummary.model_validate(r) for r in data.get("runs") or []],
            )
        return progress


class EventFollower(contextlib.AbstractContextManager["EventFollower"]):
    """A temporary rule + queue on the bus for one request's state changes; removed on exit, whatever happens."""

    def __init__(self, aws: Aws, names: ResourceNames, request_id: str, *, expected_parts: int) -> None:
        self._sqs = aws.client("sqs")
        self._events = aws.client("events")
        self._bus = names.bus
        self.name = f"{names.prefix}-cli-{uuid.uuid4().hex[:12]}"
        self._queue_url: str | None = None
        self._rule = False
        self._target = False
        self.cleanup_errors: list[str] = []
        self._progress = RequestProgress(request_id, expected_parts=expected_parts, status="sent")

    @property
    def pattern(self) -> dict[str, Any]:
        return {
            "source": [TransferExecutionStateChanged.SOURCE],
            "detail-type": [TransferExecutionStateChanged.DETAIL_TYPE],
            "detail": {"meta": {"correlation_id": [self._progress.request_id]}},
        }

    def __enter__(self) -> EventFollower:
        try:
            self._queue_url = str(
                self._sqs.create_queue(
                    QueueName=self.name,
                    Attributes={"MessageRetentionPeriod": "3600", "SqsManagedSseEnabled": "true"},
                    tags={"seqferry:purpose": "cli-follow"},
                )["QueueUrl"]
            )
            queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            rule_arn = self._events.put_rule(
                Name=self.name,
                EventBusName=self._bus,
                EventPattern=json.dumps(self.pattern),
                State="ENABLED",
                Description=f"seqferry CLI: follows request {self._progress.request_id[:100]}; deleted when done",
            )["RuleArn"]
            self._rule = True
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                    }
                ],
            }
            self._sqs.set_queue_attributes(QueueUrl=self._queue_url, Attributes={"Policy": json.dumps(policy)})
            self._events.put_targets(Rule=self.name, EventBusName=self._bus, Targets=[{"Id": "cli", "Arn": queue_arn}])
            self._target = True
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete target, rule and queue; failures are collected (the caller tells the user what is left)."""
        steps: list[tuple[str, Callable[[], object]]] = []
        if self._target:
            steps.append(
                (
                    f"target of rule {self.name}",
                    lambda: self._events.remove_targets(Rule=self.name, EventBusName=self._bus, Ids=["cli"]),
                )
            )
        if self._rule:
            steps.append(
                (f"rule {self.name}", lambda: self._events.delete_rule(Name=self.name, EventBusName=self._bus))
            )
        if self._queue_url:
            url = self._queue_url
            steps.append((f"queue {self.name}", lambda: self._sqs.delete_queue(QueueUrl=url)))
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - every step runs; what failed is reported, not raised
                self.cleanup_errors.append(f"could not delete {what}: {exc}")
        self._target = self._rule = False
        self._queue_url = None

    def poll(self, wait_s: float) -> RequestProgress:
        if self._queue_url is None:
            raise RuntimeError("EventFollower used outside its context")
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=max(0, min(20, round(wait_s))),
        )
        messages = response.get("Messages", [])
        for message in messages:
            self._apply(message.get("Body", ""))
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return self._progress

    def _apply(self, body: str) -> None:
        try:
            envelope = json.loads(body)
            event = TransferExecutionStateChanged.model_validate(envelope["detail"])
        except (ValueError, KeyError, TypeError, ValidationError):
            return  # not an executor state change: nothing this rule should have delivered
        progress = self._progress
        progress.seen = True
        if event.execution_id.startswith(REJECTED_PREFIX) and event.error and event.error.code == INVALID_REQUEST:
            progress.rejected = True
            progress.status = "rejected"
            progress.reasons = event.error.message.split("; ")
            return
        progress.status = "started"
        execution = progress.executions.setdefault(event.execution_id, ExecutionProgress(event.execution_id))
        execution.observe(event.state, event.counters, event.error, list(event.runs))


def follow(
    follower: Follower,
    on_progress: Callable[[RequestProgress], None],
    *,
    interval_s: float,
    timeout_s: float | None,
    unseen_limit_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RequestProgress:
    """Poll until the request is finished; raises WaitTimeoutError after ``timeout_s`` (the transfer goes on).

    With ``unseen_limit_s``, a request the executor has not recorded by then is an error (InvalidInputError).
    """
    started = clock()
    while True:
        progress = follower.poll(interval_s)
        on_progress(progress)
        if progress.finished:
            return progress
        if unseen_limit_s is not None and not progress.seen and clock() - started >= unseen_limit_s:
            raise InvalidInputError(
                f"the executor has no request {progress.request_id!r}",
                hint="check the id; the executor keeps request records for SEQFERRY_RECORD_TTL_DAYS (90) days",
            )
        if timeout_s is not None and clock() - started >= timeout_s:
            raise WaitTimeoutError(
                f"request {progress.request_id} not finished after {timeout_s:g} s (it goes on)",
                hint=f"follow it again with: seqferry wait {progress.request_id}",
            )
