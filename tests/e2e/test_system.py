"""The whole system as separate processes (the `make dev` Procfile) on the emulator, with the local backend.

The simulator writes a small MiSeq run and a small NovaSeq 6000 run; the notifier must announce both as
`Run Transfer Completed`, every object must equal its source file byte for byte, and one trace must run from a
scheduler tick through the executor to the notifier. A third run, a NextSeq 2000 run the operator stops early,
must end reported as `Run Transfer Failed` (sequencing_incomplete), not pending. Then an ad-hoc manifest uploaded
to `adhoc/` re-transfers the MiSeq run: the adhoc service validates it, writes its result object, and the executor
runs the request.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest

from seqferry_shared.testing.bustap import BusTap
from seqferry_shared.testing.otlp import OtlpReceiver
from seqferry_shared.testing.stack import leftover_processes, post_json, start_stack, stop_stack, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "dev-token-change-me"


def wait_for_object(s3: Any, bucket: str, key: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            body: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            return body
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_runs_reach_s3_and_are_announced(
    tmp_path: Path, otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = "seqferry"
    stack = start_stack(
        REPO,
        tmp_path,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "SEQFERRY_INTERVAL": "2s",
            "SEQFERRY_START_INTERVAL_S": "0",
            "SEQFERRY_LOCAL__QUIET_PERIOD_S": "1",
            "SEQFERRY_LOCAL__INDEX_PATH": str(tmp_path / "state" / "index.sqlite"),
            "SEQFERRY_STATE_DIR": str(tmp_path / "state" / "simulator"),
            "SEQFERRY_POLL_INTERVAL_S": "0.5",
            "SEQFERRY_MAX_PARALLEL_RUNS": "3",
        },
    )
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, stack.env[key])
    try:
        # GIVEN the dev stack: every service ready within 60 s
        ready = wait_ready(stack, timeout_s=60)
        assert set(ready) == {"notifier", "scheduler", "executor", "adhoc", "simulator"}
        observer = BusTap(prefix, name=f"{prefix}-observer")
        # WHEN the simulator writes a small MiSeq and a small NovaSeq 6000 run
        miseq = post_json(
            stack.url("simulator", "/runs"),
            {"instrument": "miseq", "cycles": "6,6", "flowcell": "v2-nano", "pace": "4", "seed": 3},
            TOKEN,
        )
        novaseq = post_json(
            stack.url("simulator", "/runs"),
            {"instrument": "novaseq6000", "cycles": "4,4", "flowcell": "S1", "pace": "4", "seed": 4},
            TOKEN,
        )
        # ... and a NextSeq 2000 run that the operator stops after 5 of its 8 cycles
        stopped = post_json(
            stack.url("simulator", "/runs"),
            {"instrument": "nextseq2000", "cycles": "4,4", "pace": "4", "seed": 5, "stop_after_cycle": 5},
            TOKEN,
        )
        runs = {miseq["run_id"], novaseq["run_id"]}
        # THEN the notifier announces both runs, once each, and reports the stopped one as incomplete
        deadline = time.monotonic() + 360
        completed: dict[str, dict[str, Any]] = {}
        failed: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and (set(completed) != runs or stopped["run_id"] not in failed):
            for event in observer.drain():
                if event["detail-type"] == "Run Transfer Completed":
                    completed[event["detail"]["run_id"]] = event["detail"]
                if event["detail-type"] == "Run Transfer Failed":
                    assert event["detail"]["run_id"] == stopped["run_id"], event
                    failed[event["detail"]["run_id"]] = event["detail"]
            if stack.process.poll() is not None:
                pytest.fail(f"stack exited:\n{stack.log_tail()}")
            time.sleep(1)
        assert set(completed) == runs, f"completed: {sorted(completed)}\n{stack.log_tail(120)}"
        assert stopped["run_id"] in failed, f"failed: {sorted(failed)}\n{stack.log_tail(120)}"
        incomplete = failed[stopped["run_id"]]
        assert incomplete["reason"] == "sequencing_incomplete"
        assert incomplete["sequencing"]["status"] == "UserEndedEarly"
        assert (incomplete["sequencing"]["cycles_planned"], incomplete["sequencing"]["cycles_completed"]) == (8, 5)
        announcements = [e for e in observer.drain() if e["detail-type"] == "Run Transfer Completed"]
        assert len(announcements) == 2
        # AND every file of each run folder is in S3 with the same bytes
        s3 = boto3.client("s3")
        bucket = f"{prefix}-runs"
        for detail in completed.values():
            folder = stack.nas / detail["nas_path"].lstrip("/")
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            assert detail["files"] == len(files)
            for path in files:
                key = str(path.relative_to(stack.nas))
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                assert body == path.read_bytes(), key
            manifest_uri = detail["checksum_manifest"]
            assert manifest_uri.startswith(f"s3://{bucket}/")
            s3.head_object(Bucket=bucket, Key=manifest_uri.removeprefix(f"s3://{bucket}/"))
        # WHEN a manifest uploaded to adhoc/ asks to re-transfer the MiSeq run (plus a hostile line)
        miseq_path = next(d["nas_path"] for d in completed.values() if d["instrument"] == "miseq")
        manifest = f"# re-transfer after an outage\r\n{miseq_path}\r\n/etc/passwd\r\n".encode()
        s3.put_object(Bucket=bucket, Key="adhoc/rerun 1.txt", Body=b"\xef\xbb\xbf" + manifest)
        # THEN the result object lists what was accepted and rejected
        result = wait_for_object(s3, bucket, "adhoc/results/rerun 1.txt.json", timeout_s=60)
        assert [a["pattern"] for a in result["accepted"]] == [miseq_path]
        assert [(r["line"], "outside" in r["reason"]) for r in result["rejected"]] == [(3, True)]
        # AND the executor ran the requested transfer to SUCCESS
        request_ids = set(result["request_ids"])
        deadline = time.monotonic() + 120
        states: list[str] = []
        while time.monotonic() < deadline and "SUCCESS" not in states:
            states = [
                e["detail"]["state"]
                for e in observer.drain()
                if e["detail-type"] == "Transfer Execution State Changed"
                and e["detail"]["trigger"] == {"kind": "request", "id": next(iter(request_ids))}
            ]
            time.sleep(1)
        assert "SUCCESS" in states, states
        # AND the people-facing views answer over the shared state table
        for service, path in (("notifier", "/api/dashboard"), ("notifier", "/runs"), ("executor", "/executions")):
            with urllib.request.urlopen(stack.url(service, path), timeout=10) as response:
                assert response.status == 200, (service, path)
        # AND one trace runs from a scheduler tick through the executor to the notifier
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            by_trace: dict[str, set[str]] = defaultdict(set)
            for span in otlp_receiver.snapshot():
                by_trace[span.trace_id].add(span.service)
            wanted = {"seqferry-scheduler", "seqferry-executor", "seqferry-notifier"}
            if any(wanted <= services for services in by_trace.values()):
                break
            time.sleep(1)
        else:
            services_per_trace = sorted(sorted(s) for s in by_trace.values())[:10]
            pytest.fail(f"no trace spans scheduler → executor → notifier; traces: {services_per_trace}")
    finally:
        stop_stack(stack)
    # AND Ctrl-C left no process behind, and none had to be killed: every service drained against the emulator
    assert leftover_processes(stack) == []
    assert "SIGKILL" not in stack.log.read_text(errors="replace"), stack.log_tail(60)
