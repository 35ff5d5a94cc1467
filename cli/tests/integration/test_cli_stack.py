"""`seqferry` against the whole system (the `make dev` Procfile as separate processes on the emulator).

One running stack serves every test of this module: a request waits to SUCCESS (following the executor's HTTP API
and, separately, bus events), a request the executor rejects, a manifest and its result, a simulated run from start
to delivery, status and the runs view.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from seqferry_shared.testing.stack import Stack

from .conftest import Cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

BUCKET = "seqferry-runs"


def s3_of(stack: Stack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def old_run_folder(stack: Stack, name: str, sizes: list[int]) -> tuple[str, dict[str, bytes]]:
    """A run folder from 2019 (outside every transfer window, so only a request moves it), quiet already."""
    nas_path = f"/sequencers/incoming/miseq/190101_M00001_{name}_000000000-CLI01"
    folder = stack.nas / nas_path.lstrip("/")
    folder.mkdir(parents=True)
    files = {}
    for index, size in enumerate(sizes):
        body = bytes((index * 7 + n) % 251 for n in range(size))
        (folder / f"file{index}.bin").write_bytes(body)
        files[f"{nas_path.lstrip('/')}/file{index}.bin"] = body
    time.sleep(1.5)  # the local engine ships a file once it has been quiet for SEQFERRY_LOCAL__QUIET_PERIOD_S
    return nas_path, files


def test_status_shows_every_service_ready_and_empty_dead_letter_queues(stack_cli: Cli):
    result = stack_cli.run("-o", "json", "status")
    assert result.code == 0, result.err
    report = result.json()
    assert {s["service"]: s["status"] for s in report["services"]} == dict.fromkeys(
        ("notifier", "scheduler", "executor", "adhoc", "simulator"), "ready"
    )
    assert [(q["queue"], q["dlq_messages"]) for q in report["queues"]] == [
        ("seqferry-executor", 0),
        ("seqferry-adhoc", 0),
        ("seqferry-notifier", 0),
    ]
    table = stack_cli.run("status")
    assert table.code == 0
    assert "seqferry-executor" in table.out
    assert "ready" in table.out


def test_a_request_waits_to_success_and_can_be_followed_again(stack: Stack, stack_cli: Cli):
    # GIVEN a quiet run folder no transfer window covers (an empty file among them)
    nas_path, files = old_run_folder(stack, "0101", [0, 1, 70_000, 1_200_000])
    # WHEN a lab engineer requests it and waits, in a pipeline (JSON on stdout, stderr not a terminal)
    result = stack_cli.run(
        "-o", "json", "request", nas_path, "--reason", "re-send after outage", "--wait", "--timeout", "180"
    )
    # THEN it exits 0 with SUCCESS, every file transferred, byte for byte
    assert result.code == 0, result.err
    report = result.json()
    assert report["outcome"] == "SUCCESS"
    assert report["includes"] == [nas_path]
    transferred = sum(e["counters"]["files_transferred"] for e in report["executions"])
    sent = sum(e["counters"]["bytes_transferred"] for e in report["executions"])
    assert (transferred, sent) == (len(files), sum(len(b) for b in files.values()))
    s3 = s3_of(stack)
    for key, body in files.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    # AND the log (stderr, not a terminal) got a line per state change seen, the last one SUCCESS with the counts
    assert (
        result.err.rstrip()
        .splitlines()[-1]
        .endswith(f"SUCCESS  {len(files)}/{len(files)} files, {len(files)} verified  1.3 MB of 1.3 MB")
    )
    # WHEN it is followed again later by its id
    again = stack_cli.run("-o", "json", "wait", report["request_id"])
    # THEN the executor's record says the same
    assert again.code == 0, again.err
    assert again.json()["outcome"] == "SUCCESS"


def test_a_request_followed_on_the_bus_cleans_up_its_rule_and_queue(stack: Stack, stack_cli: Cli):
    nas_path, files = old_run_folder(stack, "0102", [10, 20, 30])
    # WHEN the request is followed through bus events (temporary rule + queue) with the table output
    result = stack_cli.run("request", nas_path, "--wait", "--follow", "events", "--timeout", "180")
    # THEN it succeeds
    assert result.code == 0, result.err
    assert "SUCCESS" in result.out
    assert f"{len(files)}/{len(files)}" in result.out
    # AND no temporary rule or queue is left behind
    clients = {
        "endpoint_url": stack.env["AWS_ENDPOINT_URL"],
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    rules = boto3.client("events", **clients).list_rules(EventBusName="seqferry", NamePrefix="seqferry-cli-")
    assert rules["Rules"] == []
    assert boto3.client("sqs", **clients).list_queues(QueueNamePrefix="seqferry-cli-").get("QueueUrls", []) == []


def test_a_request_the_executor_rejects_exits_2_with_its_reason(stack_cli: Cli):
    # GIVEN a CLI configured with a root the deployment does not have (so its own check lets the path through)
    paths = stack_cli.env["SEQFERRY_SEQUENCER_PATHS"] + ",/sequencers/incoming/hiseq=hiseq4000"
    result = stack_cli.run(
        "request", "/sequencers/incoming/hiseq/run1", "--wait", "--timeout", "60", SEQFERRY_SEQUENCER_PATHS=paths
    )
    # THEN the executor's rejection comes back as a validation error naming the path
    assert result.code == 2, result.err
    assert "the executor rejected request" in result.err
    assert "include #1 '/sequencers/incoming/hiseq/run1': path is outside the allowed roots" in result.err
    assert "REJECTED" in result.out


def test_a_manifest_prints_its_result(stack: Stack, stack_cli: Cli, tmp_path: Path):
    nas_path, _ = old_run_folder(stack, "0103", [5])
    manifest = tmp_path / "outage 2019.txt"
    manifest.write_text(f"# after the outage\n{nas_path}\n/etc/passwd\n{nas_path}/\n")
    # WHEN it is uploaded and waited for
    result = stack_cli.run("manifest", str(manifest), "--wait", "--timeout", "120")
    # THEN accepted and rejected lines are printed with their reasons; one rejected line is exit 1
    assert result.code == 1, result.err
    assert nas_path in result.out
    assert "/etc/passwd" in result.out
    assert "path is outside the allowed roots" in result.out
    assert "partially_accepted" in result.out
    assert "1 line(s) of s3://seqferry-runs/adhoc/outage 2019.txt rejected" in result.err
    # WHEN the same file is uploaded again for a script
    again = stack_cli.run("-o", "json", "manifest", str(manifest), "--wait", "--timeout", "120")
    report = again.json()
    # THEN the JSON is this upload's result (a new version), parseable, complete
    assert report["status"] == "partially_accepted"
    assert [a["pattern"] for a in report["accepted"]] == [nas_path]
    assert [(r["line"], r["text"]) for r in report["rejected"]] == [(3, "/etc/passwd")]
    assert report["duplicates"] == [{"line": 4, "first_line": 2}]
    assert report["upload"]["uri"] == "s3://seqferry-runs/adhoc/outage 2019.txt"
    first_request = re.search(r"requests\s+(m-[0-9a-f]+)", result.out)
    assert first_request is not None
    assert report["request_id"].startswith("m-")
    assert report["request_id"] != first_request.group(1)  # this upload's result, not the earlier one's
    # WHEN a manifest has no valid line
    bad = stack_cli.run("manifest", "-", "--key", "bad.txt", "--wait", "--timeout", "120", stdin="/etc\n")
    assert bad.code == 2
    assert "no line of s3://seqferry-runs/adhoc/bad.txt was accepted" in bad.err


def test_a_simulated_run_is_listed_and_shown_until_delivered(stack_cli: Cli):
    started = stack_cli.run(
        "-o",
        "json",
        "simulate",
        "miseq",
        "--cycles",
        "6,6",
        "--flowcell",
        "v2-nano",
        "--pace",
        "4",
        "--seed",
        "11",
        "--scale",
        "0.0001",
    )
    assert started.code == 0, started.err
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 240
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = stack_cli.run("-o", "json", "run", run_id)
        if shown.code == 0:
            view = shown.json()
            if view["status"] == "completed":
                break
        time.sleep(2)
    assert view.get("status") == "completed", view
    listing = stack_cli.run("-o", "json", "runs")
    assert listing.code == 0
    row = next(item for item in listing.json()["items"] if item["run"]["run_id"] == run_id)
    assert (row["run"]["instrument"], row["progress"]) == ("miseq", 1.0)
    table = stack_cli.run("run", run_id)
    assert table.code == 0
    assert "completed" in table.out
    assert "checksum manifest" in table.out
    assert view["run"]["completion"]["manifest_uri"] in table.out
    runs_table = stack_cli.run("runs")
    assert run_id in runs_table.out
    assert "100%" in runs_table.out
    missing = stack_cli.run("run", "no_such_run")
    assert missing.code == 2
    assert "no run 'no_such_run'" in missing.err


def test_runs_watch_streams_json_until_ctrl_c(stack_cli: Cli):
    process = stack_cli.start("-o", "json", "runs", "--watch", "--interval", "0.5")
    assert process.stdout is not None
    documents = [json.loads(process.stdout.readline()) for _ in range(2)]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert all("items" in d for d in documents)
