"""The DataSync backend end to end with no NAS mounted in any seqferry service: runs are announced from S3.

What a DataSync install looks like: only DataSync's agent reads the lab share. Here the simulator plays the
instrument (it writes run folders into a directory), the DataSync stand-in plus its agent play AWS DataSync (the
agent alone reads that directory and copies into the emulated bucket, and puts DataSync's own state-change events
on the default bus), and scheduler, executor and notifier run as separate processes against the moto server with
no NAS path configured and a working directory that holds none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from seqferry_executor.testing.datasync_agent import DataSyncAgent
from seqferry_executor.testing.datasync_standin import DataSyncStandIn, running_standin
from seqferry_shared.testing.bustap import BusTap
from seqferry_shared.testing.motoserver import MotoServer
from seqferry_shared.testing.stack import ServiceProcess, post_json, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

SEQUENCER_PATHS = "/sequencers/incoming/miseq=miseq,/sequencers/incoming/novaseq=novaseq6000"
TOKEN = "e2e-token-0123456789abcdef"


@pytest.fixture
def standin() -> Iterator[DataSyncStandIn]:
    with running_standin() as server:
        yield server


def test_datasync_runs_are_announced_once_without_a_nas_mount(
    tmp_path: Path,
    moto_server: MotoServer,
    resource_prefix: str,
    bootstrapped: dict[str, Any],
    standin: DataSyncStandIn,
) -> None:
    # GIVEN the lab share, which only DataSync's agent reads, and DataSync itself (stand-in + agent)
    lab_share = tmp_path / "lab-share"
    lab_share.mkdir()
    task_arn = standin.create_task()
    bucket = f"{resource_prefix}-runs"
    agent = DataSyncAgent(
        standin, lab_share, boto3.client("s3"), bucket, events=boto3.client("events"), step_s=0.3
    ).start()
    # AND scheduler, executor and notifier with no NAS path, in a directory that holds none
    workdir = tmp_path / "no-nas"
    workdir.mkdir()
    common = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE": "true",
        "SEQFERRY_PREFIX": resource_prefix,
        "SEQFERRY_ENVIRONMENT": "test",
        "SEQFERRY_API_TOKEN": TOKEN,
        "SEQFERRY_SQS_WAIT_TIME_S": "1",
        "SEQFERRY_SEQUENCER_PATHS": SEQUENCER_PATHS,
        "SEQFERRY_DATASYNC_ENDPOINT_URL": standin.url,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "PYTHONUNBUFFERED": "1",
    }
    environments = {
        "scheduler": {**common, "SEQFERRY_INTERVAL": "2s"},
        "executor": {
            **common,
            "SEQFERRY_BACKEND": "datasync",
            "SEQFERRY_DATASYNC_TASK_ARNS": f"sequencers={task_arn}",
            "SEQFERRY_POLL_INTERVAL_S": "0.5",
        },
        "notifier": {**common, "SEQFERRY_DATASYNC_POLL_INTERVAL_S": "2", "SEQFERRY_RECHECK_INTERVAL_S": "2"},
        # the instrument: the only process that writes the share
        "simulator": {
            **common,
            "SEQFERRY_NAS_ROOT": str(lab_share),
            "SEQFERRY_STATE_DIR": str(tmp_path / "simulator-state"),
            "SEQFERRY_START_INTERVAL_S": "0",
            "SEQFERRY_SCALE": "0.0001",
        },
    }
    for name in ("scheduler", "executor", "notifier"):
        assert not any("NAS" in key for key in environments[name]), name
    observer = BusTap(resource_prefix, name=f"{resource_prefix}-observer")
    services: dict[str, ServiceProcess] = {}
    try:
        for name, env in environments.items():
            services[name] = start_service(name, env, cwd=workdir, log=tmp_path / f"{name}.log")
        for service in services.values():
            service.wait_ready(timeout_s=60)

        # WHEN the instrument writes a small MiSeq run
        run = post_json(
            services["simulator"].url("/runs"),
            {"instrument": "miseq", "cycles": "6,6", "flowcell": "v2-nano", "pace": "4", "seed": 5},
            TOKEN,
        )

        # THEN the notifier announces it, found in the bucket after a DataSync execution succeeded
        deadline = time.monotonic() + 300
        announced: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not announced:
            events = observer.drain()
            announced = [e["detail"] for e in events if e["detail-type"] == "Run Transfer Completed"]
            assert not [e for e in events if e["detail-type"] == "Run Transfer Failed"], events
            for service in services.values():
                assert service.process.poll() is None, f"{service.name} exited:\n{service.log_tail()}"
            time.sleep(1)
        logs = "\n".join(f"--- {s.name}\n{s.log_tail(40)}" for s in services.values())
        assert announced, f"no Run Transfer Completed in 300 s\n{logs}"
        (detail,) = announced
        assert detail["run_id"] == run["run_id"]
        assert detail["instrument"] == "miseq"
        # AND the announcement counts exactly the run folder's files, each in S3 with the bytes the instrument wrote
        folder = lab_share / detail["nas_path"].lstrip("/")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        assert detail["files"] == len(files)
        assert detail["bytes"] == sum(p.stat().st_size for p in files)
        s3 = boto3.client("s3")
        for path in files:
            key = path.relative_to(lab_share).as_posix()
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == path.read_bytes(), key

        # WHEN windows keep opening and DataSync executions keep succeeding over the same dates
        executions_before = len(standin.executions_of(task_arn))
        wait_until = time.monotonic() + 60
        while time.monotonic() < wait_until and len(standin.executions_of(task_arn)) < executions_before + 3:
            time.sleep(1)
        time.sleep(3)

        # THEN the run is still announced exactly once
        events = observer.drain()
        completed = [e["detail"] for e in events if e["detail-type"] == "Run Transfer Completed"]
        assert [d["run_id"] for d in completed] == [run["run_id"]]
        assert len(standin.executions_of(task_arn)) >= executions_before + 3, "no further executions ran"
        # AND the executor reported totals only: the run was found in S3, not in any run summary
        successes = [
            e["detail"]
            for e in events
            if e["detail-type"] == "Transfer Execution State Changed" and e["detail"]["state"] == "SUCCESS"
        ]
        assert successes
        assert all(d["backend"] == "datasync" and d["runs"] == [] for d in successes)
        # AND no seqferry service but the simulator ever had a NAS folder to read
        assert list(workdir.iterdir()) == []
    finally:
        for service in services.values():
            service.stop()
        agent.stop()
