"""The CloudWatch dashboard (deploy/terraform/dashboard.json.tftpl), rendered by Terraform itself.

- It carries every widget of the reference design's dashboard (AWS genomics data-transfer sample) and seqferry's
  own (runs delivered, delivery latency, dead-letter depth), over four weeks.
- Every metric a widget names exists: DataSync's and SQS's as AWS documents them; seqferry's as the notifier emits
  them through the CloudWatch exporter (a real delivery on the moto server, then ListMetrics).
- Every Logs Insights query is valid, and run over the transfer log the local engine really writes (and DataSync
  lines in its documented shape) it counts what was transferred and what failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from deploy_support import run_terraform
from logs_insights import QuerySyntaxError, parse_query, run_query
from test_terraform import hcl_json

from seqferry_executor.backends.local import LocalBackend, LocalBackendConfig
from seqferry_executor.settings import ExecutorSettings
from seqferry_notifier.app import build_service
from seqferry_notifier.settings import NotifierSettings
from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.events.models import (
    ErrorInfo,
    RunSummary,
    TransferExecutionStateChanged,
    TransferState,
    Trigger,
)
from seqferry_shared.resources import ResourceNames
from seqferry_shared.runtime import ServiceRuntime, cloudwatch_readers
from seqferry_shared.telemetry import setup_telemetry

# The reference's dashboard: deployment/cloudformation.yml of aws-samples/genomics-data-transfer-and-storage.
REFERENCE_WIDGETS = {
    "Data Transfer Task Metrics",
    "Files Transferred by Agent",
    "Data Transferred by Agent",
    "Files Transferred by Task Execution - Top 5",
    "Data Transferred by Task Execution - Top 5",
    "Data Transfer Timeline",
    "Data Transfer Errors",
    "Data Transfer Errors Count",
}
# DataSync's CloudWatch metrics and their dimensions ("Monitoring AWS DataSync with Amazon CloudWatch").
DATASYNC_METRICS = {
    "BytesCompressed",
    "BytesPreparedDestination",
    "BytesPreparedSource",
    "BytesTransferred",
    "BytesVerifiedDestination",
    "BytesVerifiedSource",
    "BytesWritten",
    "FilesDeleted",
    "FilesPreparedDestination",
    "FilesPreparedSource",
    "FilesSkipped",
    "FilesTransferred",
    "FilesVerifiedDestination",
    "FilesVerifiedSource",
}
DATASYNC_DIMENSIONS = {"TaskId", "AgentId"}
SQS_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\"([^\"]+)\"', '(\w+)', (\d+)\)")


def inputs(prefix: str, *, datasync: bool) -> dict[str, Any]:
    names = ResourceNames.for_prefix(prefix)
    return {
        "region": "eu-west-1",
        "namespace": names.metrics_namespace,
        "task_id": "task-0123456789abcdef0" if datasync else "",
        "agent_ids": ["agent-0123456789abcdef0", "agent-0fedcba9876543210"] if datasync else [],
        "log_groups": [names.transfer_log_group] + ([f"/aws/datasync/{prefix}"] if datasync else []),
        "queues": {q.name.removeprefix(f"{prefix}-"): q.name for q in names.queues},
        "bus": names.bus,
        "rules": {
            "to_executor": f"{prefix}-to-executor",
            "to_notifier": f"{prefix}-to-notifier",
            "datasync_to_notifier": f"{prefix}-datasync-to-notifier",
        },
        "bucket": names.bucket,
    }


def render(workdir: Path, env: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body exactly as Terraform renders it (templatefile in `terraform console`)."""
    expression = f'templatefile("dashboard.json.tftpl", {hcl_json(values)})\n'
    result = run_terraform(["console", "-no-color"], workdir, env, timeout=120, stdin=expression)
    assert result.returncode == 0, result.stdout + result.stderr
    body = result.stdout.strip().removeprefix("<<EOT").removesuffix("EOT").strip()
    dashboard: dict[str, Any] = json.loads(body)
    return dashboard


@pytest.fixture(scope="module")
def dashboards(workdir: Path, tf_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        "datasync": render(workdir, tf_env, inputs("lab", datasync=True)),
        "local": render(workdir, tf_env, inputs("lab", datasync=False)),
    }


def widgets(dashboard: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    return [w for w in dashboard["widgets"] if kind is None or w["type"] == kind]


def by_title(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["properties"]["title"]: w for w in dashboard["widgets"]}


def test_reference_widgets_and_seqferrys_own_over_four_weeks(dashboards: dict[str, dict[str, Any]]) -> None:
    full = by_title(dashboards["datasync"])
    assert set(full) >= REFERENCE_WIDGETS
    assert {"Runs delivered and failed", "Dead-letter queue depth"} <= set(full)
    assert any(title.startswith("Run delivery latency") for title in full)
    assert dashboards["datasync"]["start"] == "-PT4W"
    # without DataSync, its metric widgets go; the log widgets stay (the local engine writes the same log lines)
    local = by_title(dashboards["local"])
    assert set(full) - set(local) == {
        "Data Transfer Task Metrics",
        "Files Transferred by Agent",
        "Data Transferred by Agent",
    }
    # widgets do not overlap on the grid
    for dashboard in dashboards.values():
        cells = set()
        for widget in widgets(dashboard):
            area = {
                (x, y)
                for x in range(widget["x"], widget["x"] + widget["width"])
                for y in range(widget["y"], widget["y"] + widget["height"])
            }
            assert not area & cells, widget["properties"]["title"]
            cells |= area


def test_aws_metrics_named_by_widgets_exist(dashboards: dict[str, dict[str, Any]]) -> None:
    names = ResourceNames.for_prefix("lab")
    queue_names = {q.name for q in names.queues} | {q.dlq_name for q in names.queues}
    for widget in widgets(dashboards["datasync"], "metric"):
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], dict):
                continue  # an expression (seqferry's metrics: the next test)
            namespace, name, *rest = [m for m in metric if not isinstance(m, dict)]
            dimensions = dict(zip(rest[::2], rest[1::2], strict=True))
            if namespace == "AWS/DataSync":
                assert name in DATASYNC_METRICS, name
                assert set(dimensions) <= DATASYNC_DIMENSIONS
                assert dimensions.get("TaskId", "task-0123456789abcdef0") == "task-0123456789abcdef0"
            elif namespace == "AWS/SQS":
                assert name in SQS_METRICS, name
                assert dimensions["QueueName"] in queue_names
            elif namespace == "AWS/S3":
                assert dimensions["BucketName"] == names.bucket
            else:
                assert namespace == "AWS/Events", namespace
                assert name == "FailedInvocations"


def test_every_log_query_is_valid_and_reads_both_log_groups(dashboards: dict[str, dict[str, Any]]) -> None:
    for kind, groups in (
        ("datasync", ["/seqferry/lab/transfers", "/aws/datasync/lab"]),
        ("local", ["/seqferry/lab/transfers"]),
    ):
        for widget in widgets(dashboards[kind], "log"):
            query = parse_query(widget["properties"]["query"])
            assert query.sources == groups, widget["properties"]["title"]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        # the reference's own typo (an unbalanced parenthesis) and its parse with four names for three globs
        ("fields @logStream | stats (sum(numbytes) as Data by @logStream", "unbalanced"),
        ('parse @message "[*] Transferred file *, * " as level, file_name, numbytes, bytes', "3 '\\*' but 4 names"),
        ("fields @message | stats count(*) as n | sort size desc", "'size' is not defined"),
        ("filter @message like /[/", "bad regex"),
        ("fields @message | limit 0", "limit"),
        ("fields @message | frobnicate x", "unknown command"),
    ],
)
def test_the_query_checker_refuses_what_logs_insights_refuses(bad: str, why: str) -> None:
    with pytest.raises(QuerySyntaxError, match=why):
        parse_query(bad)


@pytest.mark.integration
async def test_log_widgets_count_what_the_local_engine_logged(
    dashboards: dict[str, dict[str, Any]], tmp_path: Path, bootstrapped: dict[str, Any], resource_prefix: str
) -> None:
    # GIVEN a local-engine pass over a run folder with three files and one unreadable entry
    nas = tmp_path / "nas"
    run = nas / "sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE"
    sizes = {f"ok{i}.cbcl": 1000 * (i + 1) for i in range(3)}
    for name, size in sizes.items():
        (run / "Data").mkdir(parents=True, exist_ok=True)
        (run / "Data" / name).write_bytes(os.urandom(size))
        old = time.time() - 60
        os.utime(run / "Data" / name, (old, old))
    (run / "loop").symlink_to(run / "loop")
    settings = ExecutorSettings(
        prefix=resource_prefix,
        environment="test",
        nas_root=nas,
        sequencer_paths="/sequencers/incoming/miseq=miseq",
        # no quiet period: utime() just changed the files' ctime, and a warm machine scans within milliseconds
        local=LocalBackendConfig(quiet_period_s=0, index_path=tmp_path / "index.sqlite"),
    )
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        try:
            await_time = time.monotonic() + 60
            execution_id = await backend.start("sequencers", ["/sequencers/incoming/miseq/2511*"])
            while not (status := await backend.describe(execution_id)).state.terminal:
                assert time.monotonic() < await_time
                await asyncio.sleep(0.05)
        finally:
            await backend.close()
    assert (status.counters.files_transferred, status.counters.files_failed) == (3, 1), status
    # ... and, in the DataSync task's group, lines of a DataSync execution in DataSync's documented shape
    group = settings.names.transfer_log_group
    logs = sync_client("logs", settings)
    events = [
        {"@timestamp": e["timestamp"], "@message": e["message"], "@logStream": execution_id, "@log": group}
        for e in logs.get_log_events(logGroupName=group, logStreamName=execution_id, startFromHead=True)["events"]
    ]
    datasync_group = f"/aws/datasync/{resource_prefix}"
    events += [
        {"@timestamp": events[0]["@timestamp"], "@message": m, "@logStream": "exec-0a1b2c3d4e5f60718", "@log": g}
        for m, g in (
            ("[NOTICE] Transferred file /sequencers/incoming/novaseq/R/RunInfo.xml, 700 bytes", datasync_group),
            ("[NOTICE] Verified file /sequencers/incoming/novaseq/R/RunInfo.xml", datasync_group),
        )
    ]
    dashboard = render_for(dashboards, resource_prefix)

    # WHEN each log widget's query runs over those events
    results = {w["properties"]["title"]: run_query(w["properties"]["query"], events) for w in widgets(dashboard, "log")}

    # THEN the numbers are the pass's own
    total = sum(sizes.values())
    assert results["Files Transferred by Task Execution - Top 5"] == [
        {"Execution": execution_id, "Files": 3},
        {"Execution": "exec-0a1b2c3d4e5f60718", "Files": 1},
    ]
    assert results["Data Transferred by Task Execution - Top 5"] == [
        {"Execution": execution_id, "Bytes": total},
        {"Execution": "exec-0a1b2c3d4e5f60718", "Bytes": 700},
    ]
    assert sum(r["Bytes"] for r in results["Data Transfer Timeline"]) == total + 700
    assert sum(r["Errors"] for r in results["Data Transfer Errors Count"]) == 1
    (error,) = results["Data Transfer Errors"]
    assert error["Execution"] == execution_id
    assert error["@message"].startswith("[ERROR] Failed file /sequencers/incoming/miseq/")


def render_for(dashboards: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    """The DataSync-enabled dashboard with this test's names (the log group names carry the prefix)."""
    text = json.dumps(dashboards["datasync"]).replace("/seqferry/lab/", f"/seqferry/{prefix}/")
    return dict(json.loads(text.replace("/aws/datasync/lab", f"/aws/datasync/{prefix}")))


@pytest.mark.integration
async def test_seqferry_widgets_read_metrics_the_notifier_emits(
    dashboards: dict[str, dict[str, Any]], bootstrapped: dict[str, Any], resource_prefix: str
) -> None:
    # GIVEN a notifier pushing its metrics to CloudWatch (the moto server)
    settings = NotifierSettings(
        prefix=resource_prefix,
        environment="test",
        cloudwatch_metrics=True,
        sequencer_paths="/sequencers/incoming/miseq=miseq",
        listing_min_interval_s=0,
    )
    telemetry = setup_telemetry("notifier", set_global=False, readers=cloudwatch_readers(settings, "notifier"))
    s3 = sync_client("s3", settings)
    bucket = settings.names.bucket
    delivered, failed = "251125_M00123_0001_000000000-AAAAA", "251125_M00123_0002_000000000-BBBBB"
    files = {
        "RunInfo.xml": b'<RunInfo><Run Id="x"><Reads><Read Number="1" NumCycles="2" IsIndexedRead="N"/></Reads>'
        b'<FlowcellLayout LaneCount="1"/></Run></RunInfo>',
        "Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl": b"a" * 100,
        "Data/Intensities/BaseCalls/L001/C2.1/s_1_1101.bcl": b"b" * 100,
        "RTAComplete.txt": b"done",
    }
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"sequencers/incoming/miseq/{delivered}/{name}", Body=body)

    def event(execution: str, run_id: str, state: TransferState) -> TransferExecutionStateChanged:
        summary = RunSummary(
            run_id=run_id,
            nas_path=f"/sequencers/incoming/miseq/{run_id}",
            s3_prefix=f"sequencers/incoming/miseq/{run_id}/",
            files_total=len(files),
            bytes_total=sum(len(b) for b in files.values()),
            markers=["RTAComplete.txt"],
        )
        return TransferExecutionStateChanged(
            execution_id=execution,
            backend="local",
            task="sequencers",
            state=state,
            trigger=Trigger(kind="window", id="1"),
            runs=[summary],
            error=ErrorInfo(code="FilesFailed", message="1 file(s) failed") if state is TransferState.ERROR else None,
        )

    # WHEN it delivers one run and sees another one's execution fail
    async with aiohttp.ClientSession() as http, ServiceRuntime(settings, "notifier", telemetry=telemetry) as runtime:
        service, _ = await build_service(runtime, settings, http)
        await service.on_execution_event(event("exec-ok", delivered, TransferState.SUCCESS))
        await service.on_execution_event(event("exec-bad", failed, TransferState.ERROR))
        run = await service.run(delivered)
        assert run is not None
        assert run.completion is not None
    telemetry.meter_provider.force_flush()
    telemetry.shutdown()
    listed = sync_client("cloudwatch", settings).list_metrics(Namespace=settings.names.metrics_namespace)["Metrics"]
    emitted = {(m["MetricName"], frozenset(d["Name"] for d in m["Dimensions"])) for m in listed}

    # THEN every SEARCH of the dashboard's seqferry widgets finds metrics the notifier emitted, with exactly the
    # dimension set it searches
    searches = []
    for widget in widgets(dashboards["datasync"], "metric"):
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], dict):
                searches.extend(_SEARCH.findall(metric[0]["expression"]))
    assert len(searches) == 4
    for schema, name, _stat, _period in searches:
        namespace, *dimensions = schema.split(",")
        assert namespace == "lab"  # the prefix the dashboard was rendered with
        assert (name, frozenset(dimensions)) in emitted, (name, dimensions, sorted(emitted))
