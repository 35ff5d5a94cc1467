"""Kill the executor process while it polls; after a restart it follows the execution to its end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from seqferry_executor.testing.datasync_standin import DataSyncStandIn
from seqferry_shared.events.models import TransferWindowOpened
from seqferry_shared.testing.motoserver import free_port

pytestmark = pytest.mark.integration


class ExecutorProcess:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env = env
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seqferry_executor"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("executor not ready in 30 s:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def executor_process(
    settings_env: dict[str, str], bootstrapped: dict[str, Any], standin: DataSyncStandIn, tmp_path: Path
) -> Iterator[tuple[ExecutorProcess, str]]:
    task_arn = standin.create_task()
    port = free_port()
    env = {
        **os.environ,
        **settings_env,
        "SEQFERRY_BACKEND": "datasync",
        "SEQFERRY_DATASYNC_ENDPOINT_URL": standin.url,
        "SEQFERRY_DATASYNC_TASK_ARNS": f"sequencers={task_arn}",
        "SEQFERRY_POLL_INTERVAL_S": "0.2",
        "SEQFERRY_HTTP_PORT": str(port),
        "SEQFERRY_SQS_VISIBILITY_TIMEOUT_S": "5",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
    }
    process = ExecutorProcess(env, port, tmp_path / "executor.log")
    try:
        yield process, task_arn
    finally:
        process.stop()


def put_window(prefix: str, tick: int, includes: list[str]) -> None:
    detail = TransferWindowOpened(
        task="sequencers",
        tick=tick,
        window_start="2024-11-24T00:00:00+00:00",
        window_end="2024-11-25T12:00:00+00:00",
        time_zone="UTC",
        includes=includes,
    )
    boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": prefix,
                "Source": detail.SOURCE,
                "DetailType": detail.DETAIL_TYPE,
                "Detail": detail.model_dump_json(),
            }
        ]
    )


def test_killed_while_polling_then_restarted_follows_the_execution_to_its_end(
    executor_process: tuple[ExecutorProcess, str], standin: DataSyncStandIn, tap: Any, resource_prefix: str
):
    process, task_arn = executor_process
    process.start()
    # GIVEN the executor started an execution for a window and is polling it
    put_window(resource_prefix, 1, ["/sequencers/incoming/miseq/241125*", "/adhoc"])
    tap.wait_for(lambda d: "LAUNCHING" in tap.states(d))
    (execution,) = standin.executions_of(task_arn)
    standin.advance(execution.arn, "TRANSFERRING", EstimatedFilesToTransfer=5)
    tap.wait_for(lambda d: "TRANSFERRING" in tap.states(d))

    # WHEN it is killed (no shutdown at all), the execution ends and another window arrives meanwhile
    process.kill()
    standin.advance(execution.arn, "SUCCESS", FilesTransferred=5, FilesVerified=5)
    put_window(resource_prefix, 2, ["/sequencers/incoming/miseq/241126*", "/adhoc"])
    process.start()

    # THEN the restarted executor emits the end of the execution with its counters, without starting it again,
    # and then runs the window that arrived while it was down
    details = tap.wait_for(lambda d: "SUCCESS" in tap.states(d) and len(standin.starts(task_arn)) == 2)
    assert tap.states(details, execution.arn) == ["LAUNCHING", "TRANSFERRING", "SUCCESS"]
    success = next(d for d in details if d["state"] == "SUCCESS")
    assert success["counters"]["files_verified"] == 5
    assert standin.starts(task_arn)[1]["Includes"][0]["Value"] == "/sequencers/incoming/miseq/241126*|/adhoc"
