"""Stopping: SIGTERM with messages in flight, and Ctrl-C of the whole dev stack while it works.

SIGTERM is what Kubernetes, Compose and honcho send. In-flight handlers get ``SEQFERRY_SHUTDOWN_GRACE_S`` to
finish (their messages are then deleted); those still running after it are cancelled and their messages made
visible again at once, for another worker; nothing waits for a visibility timeout, nothing is processed twice.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from scenario import Profile, Recorder, Row
from system import STATE_CHANGED, System, wait_until

from seqferry_shared.events.models import TransferRequested
from seqferry_shared.testing.stack import leftover_processes, start_stack, wait_ready

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]


def send_request(system: System, request_id: str) -> None:
    detail = TransferRequested(request_id=request_id, includes=["/sequencers/incoming/miseq"])
    entry = {
        "EventBusName": system.names.bus,
        "Source": "lims.tests",
        "DetailType": detail.DETAIL_TYPE,
        "Detail": detail.model_dump_json(),
    }
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def queue_counts(system: System) -> tuple[int, int]:
    """(visible, in flight) messages of the executor's queue."""
    url = system.sqs.get_queue_url(QueueName=system.names.executor_queue.name)["QueueUrl"]
    attrs = system.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def executions_of(system: System, request_id: str) -> set[str]:
    return {
        e["detail"]["execution_id"]
        for e in system.events(STATE_CHANGED)
        if (e["detail"].get("trigger") or {}).get("id") == request_id
    }


def in_flight(system: System) -> bool:
    assert system.proxy is not None
    return any(k.startswith("latency executor dynamodb") for k in system.proxy.stats()["injected"])


@pytest.mark.parametrize(("grace_s", "work_s", "finishes"), [(15, 3, True), (1, 8, False)])
def test_sigterm_with_a_message_in_flight(
    system: System, reliability: Recorder, grace_s: int, work_s: int, finishes: bool
) -> None:
    assert system.proxy is not None
    executor = system["executor"]
    executor.env |= {"SEQFERRY_SHUTDOWN_GRACE_S": str(grace_s)}
    system.start("executor")
    # GIVEN a handler that takes `work_s` (its state-table writes answer slowly) in flight
    system.proxy.set_rules(
        [{"kind": "latency", "clients": ["executor"], "services": ["dynamodb"], "delay_s": work_s, "limit": 1}]
    )
    send_request(system, "in-flight")
    wait_until(lambda: in_flight(system), 60, "the handler in flight", system=system)
    # WHEN the executor gets SIGTERM
    code, took = executor.terminate(timeout_s=grace_s + 30)
    visible, invisible = queue_counts(system)
    # THEN the handler finished and its message was deleted, or (grace too short) the message is back at once
    if finishes:
        assert (visible, invisible) == (0, 0), "the handler should have finished and deleted its message"
        assert "returned to the queue unfinished" not in executor.log_text()
    else:
        assert (visible, invisible) == (1, 0), "the unfinished message should be visible again at once"
        assert "1 message(s) returned to the queue unfinished" in executor.log_text()
    assert code in (0, -signal.SIGTERM)
    # AND after a restart the request has run exactly once
    system.proxy.clear()
    system.start("executor")
    wait_until(lambda: executions_of(system, "in-flight"), 120, "the request executed", system=system)
    wait_until(lambda: queue_counts(system) == (0, 0), 60, "the queue drained", system=system)
    executions = executions_of(system, "in-flight")
    reliability.add(
        Row(
            scenario="shutdown",
            fault=f"SIGTERM with a {work_s} s handler in flight, grace {grace_s} s",
            injected="SIGTERM to the executor while it handles a Transfer Requested",
            count=1,
            lost=0 if executions else 1,
            duplicated=len(executions) - 1,
            recovery_s=took,
            notes=("handler finished, message deleted" if finishes else "message visible again at once")
            + f"; exit after {took:.1f} s",
        )
    )
    assert len(executions) == 1


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer dev-token-change-me"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_ctrl_c_of_make_dev_while_it_works(tmp_path: Path, profile: Profile, reliability: Recorder) -> None:
    # GIVEN the dev stack (the Procfile under honcho) transferring a run as the simulator writes it
    stack = start_stack(REPO, tmp_path, {"SEQFERRY_START_INTERVAL_S": "0", "SEQFERRY_LOCAL__QUIET_PERIOD_S": "1"})
    try:
        wait_ready(stack, timeout_s=90)
        post_json(stack.url("simulator", "/runs"), {"instrument": "miseq", "cycles": "26,8,26", "pace": "8"})
        executor = stack.url("executor", "/executions/active")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with urllib.request.urlopen(executor, timeout=10) as response:
                if json.loads(response.read()):
                    break
            time.sleep(0.5)
        time.sleep(3)
    finally:
        # WHEN Ctrl-C reaches honcho
        started = time.monotonic()
        stack.process.send_signal(signal.SIGINT)
        stack.process.wait(timeout=60)
        took = time.monotonic() - started
    log = stack.log.read_text(errors="replace")
    killed = [line for line in log.splitlines() if "SIGKILL" in line]
    reliability.add(
        Row(
            scenario="shutdown",
            fault="Ctrl-C of make dev while transfers run",
            injected="SIGINT to honcho (it sends SIGTERM to every process, SIGKILL after 5 s)",
            count=1,
            lost=len(killed),
            duplicated=0,
            recovery_s=took,
            notes=f"every process exited by itself in {took:.1f} s; {len(killed)} killed",
        )
    )
    # THEN every service drained and exited by itself: honcho had to kill nothing, nothing was left behind
    assert killed == [], "\n".join(killed)
    for service in ("notifier", "scheduler", "executor", "adhoc", "simulator"):
        assert f"{service} uvicorn.error: Application shutdown complete" in log, service
    assert leftover_processes(stack) == []
