"""compose.yaml for real: the five service images, brought up with the smallest override for a machine where no
registry answers (deploy/compose/no-registry.yaml: moto's server in LocalStack's place, the test OTLP receiver in
the collector's), driven only from the host over the published 127.0.0.1 ports and the AWS APIs, as a user would.

The tests share one compose project (module scope) and run in order: healthy stack, a run shipped and announced,
a Transfer Requested from the host, the dashboard, traces, a stop in the middle of a transfer, a full stop, down.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from typing import Any

import boto3
import pytest
from docker_support import (
    BUS,
    LARGE_RUNS,
    PORTS,
    SERVICES,
    ComposeProject,
    assert_bucket_holds,
    http_json,
    run_files,
    start_run,
    tick,
    wait_for_event,
)

from seqferry_shared.testing.bustap import BusTap

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

UID = 10001


@pytest.fixture(scope="module")
def stack(no_registry_stack: ComposeProject) -> ComposeProject:
    return no_registry_stack


@pytest.fixture(scope="module")
def aws(stack: ComposeProject) -> dict[str, str]:
    """Host-side AWS settings pointing at the stack's emulator through its published port."""
    env = {
        "AWS_ENDPOINT_URL": stack.emulator_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


@pytest.fixture(scope="module")
def tap(aws: dict[str, str]) -> BusTap:
    """A queue on the stack's bus that sees every seqferry.* event, like a downstream consumer would."""
    return BusTap(BUS, name="compose-tier-observer")


@pytest.fixture(scope="module")
def shipped_run(stack: ComposeProject, tap: BusTap) -> dict[str, Any]:
    """A small run written by the simulator container, then shipped by the executor and announced."""
    run = start_run(stack, {"cycles": "6,6", "pace": "4", "seed": 3})
    return wait_for_event(stack, tap, "Run Transfer Completed", {"run_id": run["run_id"]}, 300, ticks=True)


def test_every_service_is_healthy_unprivileged_on_a_read_only_root(stack: ComposeProject) -> None:
    # GIVEN the stack up (compose waited for every health check)
    assert stack.container("bootstrap").attrs["State"]["ExitCode"] == 0
    for service in SERVICES:
        container = stack.container(service)
        # THEN each service is healthy, runs as uid/gid 10001 and cannot write its root filesystem
        assert container.attrs["State"]["Health"]["Status"] == "healthy", service
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True, service
        probe = (
            "import os, errno\n"
            "print(os.getuid(), os.getgid())\n"
            "try:\n    open('/opt/seqferry/probe', 'w')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])\n"
            # its working directory is writable: relative paths (var/state/...) land there
            "open('probe', 'w').write('x'); os.remove('probe'); print(os.getcwd())\n"
        )
        code, output = container.exec_run(["python", "-c", probe])
        assert code == 0, (service, output.decode())
        assert output.decode().split() == [str(UID), str(UID), "EROFS", "/var/lib/seqferry"], service


def test_a_simulated_run_is_shipped_byte_for_byte_and_announced(
    stack: ComposeProject, tap: BusTap, shipped_run: dict[str, Any]
) -> None:
    # GIVEN a run the simulator container wrote onto the nas volume, WHEN the executor container shipped it
    files = run_files(stack, shipped_run["nas_path"])
    # THEN the notifier announced it once, counting every file, and every object equals the NAS file's bytes
    announced = [d for d in tap.details("Run Transfer Completed") if d["run_id"] == shipped_run["run_id"]]
    assert len(announced) == 1
    assert shipped_run["files"] == len(files)
    assert shipped_run["bytes"] == sum(len(body) for body in files.values())
    assert_bucket_holds(files)


def request_transfer(includes: list[str], *, reason: str, requested_by: str) -> str:
    """docs/transfer-requested.md's Python example, as written there."""
    request_id = f"lims-{uuid.uuid4()}"
    detail = {
        "meta": {"event_id": str(uuid.uuid4()), "correlation_id": request_id},
        "request_id": request_id,
        "includes": list(includes),
        "reason": reason,
        "requested_by": requested_by,
    }
    response = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": "lims.lab.example",
                "DetailType": "Transfer Requested",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0, response
    return request_id


def test_a_transfer_requested_from_the_host_ends_in_success(
    stack: ComposeProject, tap: BusTap, shipped_run: dict[str, Any]
) -> None:
    # WHEN a LIMS on the host asks for the run again over EventBridge
    request_id = request_transfer([shipped_run["nas_path"] + "/"], reason="re-check", requested_by="compose tier")
    # THEN the executor container runs it to SUCCESS
    trigger = {"kind": "request", "id": request_id}
    done = wait_for_event(
        stack, tap, "Transfer Execution State Changed", {"trigger": trigger, "state": "SUCCESS"}, 120, ticks=False
    )
    assert done.get("error") is None
    assert not [
        d for d in tap.details("Transfer Execution State Changed") if d["trigger"] == trigger and d["state"] == "ERROR"
    ]


def test_the_dashboard_answers_on_its_published_loopback_port(stack: ComposeProject) -> None:
    bindings = stack.container("notifier").attrs["HostConfig"]["PortBindings"][f"{PORTS['notifier']}/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    with urllib.request.urlopen(stack.url("notifier", "/"), timeout=10) as response:
        page = response.read().decode()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
    assert "seqferry" in page.lower()
    dashboard = http_json(stack.url("notifier", "/api/dashboard"), token=None)
    assert dashboard


def test_one_trace_spans_scheduler_executor_and_notifier(stack: ComposeProject, shipped_run: dict[str, Any]) -> None:
    # GIVEN the services export over OTLP/HTTP to the collector's address (the test receiver stands in for it)
    wanted = {"seqferry-scheduler", "seqferry-executor", "seqferry-notifier"}
    deadline = time.monotonic() + 60
    while True:
        spans = http_json(stack.url("otel-collector", "/spans"), token=None)
        by_trace: dict[str, set[str]] = defaultdict(set)
        for span in spans:
            by_trace[span["trace_id"]].add(span["service"])
        # THEN one trace runs from a scheduler tick through the executor to the notifier
        if any(wanted <= services for services in by_trace.values()):
            return
        if time.monotonic() > deadline:
            seen = sorted(map(sorted, by_trace.values()))[:10]
            pytest.fail(f"no trace spans {sorted(wanted)}; services per trace: {seen}")
        time.sleep(2)


def exit_states(stack: ComposeProject, services: tuple[str, ...]) -> dict[str, tuple[str, int, bool]]:
    states = {}
    for service in services:
        state = stack.container(service).attrs["State"]
        states[service] = (state["Status"], state["ExitCode"], state["OOMKilled"])
    return states


# At least this much of the run still to send when the stack is stopped (whichever tick's execution carries it; a
# pass estimates its bytes as its walk goes, so the estimate runs only a little ahead of what was sent).
IN_FLIGHT_BYTES = 32 * 1024 * 1024


def test_stop_during_a_transfer_then_start_loses_and_duplicates_nothing(stack: ComposeProject, tap: BusTap) -> None:
    # GIVEN a run big enough that shipping it takes a while, written completely by the simulator
    run = start_run(stack, {"cycles": "3,3", "pace": "50", "seed": 11}, LARGE_RUNS)
    wait_for_event(stack, tap, "Sequencing Run Completed", {"run_id": run["run_id"]}, 300, ticks=False)
    files = run_files(stack, run["path"])
    run_bytes = sum(len(body) for body in files.values())
    assert run_bytes >= 4 * IN_FLIGHT_BYTES, f"run of {run_bytes} bytes: too small to be caught mid-transfer"
    # WHEN a transfer window opens and the executor is in the middle of shipping it
    tick(stack)
    deadline = time.monotonic() + 120
    while True:
        active = http_json(stack.url("executor", "/executions/active"), token=None)
        moving = [
            e
            for e in active
            if e["state"] == "TRANSFERRING"
            and e["counters"]["bytes_estimated"] >= IN_FLIGHT_BYTES
            and e["counters"]["bytes_transferred"] <= run_bytes - IN_FLIGHT_BYTES
        ]
        if moving:
            break
        assert time.monotonic() < deadline, f"no transfer started\n{stack.logs()}"
        time.sleep(0.1)
    stack.compose("stop", *SERVICES, timeout=240)
    # THEN every service container stopped by itself within its grace period (SIGKILL would exit 137)
    stopped = exit_states(stack, SERVICES)
    assert stopped == dict.fromkeys(SERVICES, ("exited", 0, False)), f"{stopped}\n{stack.logs()}"
    # WHEN the stack is started again
    stack.compose("start", timeout=240)
    stack.wait_healthy(SERVICES, timeout_s=180)
    # THEN the run completes, announced exactly once, with every file in the bucket as written
    done = wait_for_event(stack, tap, "Run Transfer Completed", {"run_id": run["run_id"]}, 300, ticks=True)
    assert done["files"] == len(files)
    assert_bucket_holds(files)
    time.sleep(5)
    announcements = Counter(d["run_id"] for d in tap.details("Run Transfer Completed"))
    assert announcements[run["run_id"]] == 1


def test_compose_stop_ends_every_container_within_its_grace_period(stack: ComposeProject) -> None:
    services = tuple(c.labels["com.docker.compose.service"] for c in stack.containers() if c.status == "running")
    assert {*SERVICES, "localstack", "otel-collector"} <= set(services)
    stack.compose("stop", timeout=240)
    stopped = exit_states(stack, services)
    assert stopped == dict.fromkeys(services, ("exited", 0, False)), stopped


def test_down_leaves_no_container_network_or_volume(stack: ComposeProject) -> None:
    assert stack.leftovers()["volumes"], "the project had volumes to remove"
    stack.compose("down", "--volumes", "--remove-orphans", timeout=180)
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
