"""`seqferry` against the emulator alone (moto server, one bootstrapped prefix per test, no service running)."""

from __future__ import annotations

import json
import shlex
import signal
import time
from typing import Any

import boto3
import pytest

from seqferry_shared.testing.bustap import BusTap
from seqferry_shared.testing.motoserver import MotoServer, free_port

from .conftest import REPO, Cli, aws_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def cli(moto_server: MotoServer, resource_prefix: str, bootstrapped: dict[str, Any]) -> Cli:
    closed = f"http://127.0.0.1:{free_port()}"
    return Cli(
        {
            **aws_env(moto_server.url),
            "SEQFERRY_PREFIX": resource_prefix,
            **{
                f"SEQFERRY_{s.upper()}_URL": closed for s in ("notifier", "scheduler", "executor", "adhoc", "simulator")
            },
        }
    )


def test_a_request_puts_the_published_contract_on_the_bus(cli: Cli, resource_prefix: str):
    tap = BusTap(resource_prefix, sources=["seqferry.cli"])
    # WHEN a request is sent with an id of the caller's (a retry with the same id must be the same event)
    args = [
        *("-o", "json", "request", "/sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE/"),
        *("/sequencers/incoming/iseq/2025*", "--reason", "after NAS outage", "--task", "sequencers"),
        *("--requested-by", "jane@lab.example", "--request-id", "lims-0042"),
    ]
    result = cli.run(*args)
    assert result.code == 0, result.err
    again = cli.run(*args)
    assert again.json()["event_id"] == result.json()["event_id"]
    # THEN the bus carries Transfer Requested from seqferry.cli, correlated by the request id
    details = tap.wait_for(lambda d: len(d) == 2)
    assert details[0]["request_id"] == "lims-0042"
    assert details[0]["includes"] == [
        "/sequencers/incoming/miseq/251125_M00123_0001_000000000-ABCDE/",
        "/sequencers/incoming/iseq/2025*",
    ]
    assert (details[0]["task"], details[0]["reason"], details[0]["requested_by"]) == (
        "sequencers",
        "after NAS outage",
        "jane@lab.example",
    )
    assert details[0]["meta"]["correlation_id"] == "lims-0042"
    assert details[0]["meta"]["event_id"] == details[1]["meta"]["event_id"] == result.json()["event_id"]
    envelope = tap.drain()[0]
    assert (envelope["source"], envelope["detail-type"]) == ("seqferry.cli", "Transfer Requested")
    assert "seqferry wait lims-0042" in result.err


def test_wait_over_http_checks_the_executor_before_sending(cli: Cli, resource_prefix: str):
    tap = BusTap(resource_prefix, sources=["seqferry.cli"])
    result = cli.run("request", "/sequencers/incoming/miseq/x", "--wait")
    assert result.code == 3
    assert "cannot reach the executor" in result.err
    time.sleep(1)
    assert tap.drain() == []  # nothing was published


def cli_resources(prefix: str, endpoint: str) -> tuple[list[Any], list[str]]:
    clients = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    rules = boto3.client("events", **clients).list_rules(EventBusName=prefix, NamePrefix=f"{prefix}-cli-")["Rules"]
    queues = boto3.client("sqs", **clients).list_queues(QueueNamePrefix=f"{prefix}-cli-").get("QueueUrls", [])
    return rules, queues


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_following_on_the_bus_removes_its_rule_and_queue_when_interrupted(
    cli: Cli, resource_prefix: str, moto_server: MotoServer, signum: int
):
    # GIVEN a request followed through bus events, with no executor to answer it
    process = cli.start("request", "/sequencers/incoming/miseq/run", "--wait", "--follow", "events")
    try:
        deadline = time.monotonic() + 60
        rules, queues = cli_resources(resource_prefix, moto_server.url)
        while (len(rules), len(queues)) != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.2)
            rules, queues = cli_resources(resource_prefix, moto_server.url)
        assert (len(rules), len(queues)) == (1, 1)
        assert json.loads(rules[0]["EventPattern"])["detail"]["meta"]["correlation_id"][0].startswith("cli-")
        time.sleep(1)  # past the publish, into the wait
        # WHEN it is interrupted (Ctrl-C) or terminated
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # THEN it exits 130 and leaves nothing behind
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert cli_resources(resource_prefix, moto_server.url) == ([], [])


def test_timeout_exits_4_and_says_how_to_follow_again(cli: Cli, resource_prefix: str, moto_server: MotoServer):
    result = cli.run("request", "/sequencers/incoming/miseq/run", "--wait", "--follow", "events", "--timeout", "2")
    assert result.code == 4, result.err
    assert "not finished after 2 s (it goes on)" in result.err
    assert "hint: follow it again with: seqferry wait cli-" in result.err
    assert cli_resources(resource_prefix, moto_server.url) == ([], [])


def test_status_without_services_exits_1_and_still_shows_the_queues(cli: Cli, resource_prefix: str):
    result = cli.run("-o", "json", "status")
    assert result.code == 1
    report = result.json()
    assert {s["status"] for s in report["services"]} == {"unreachable"}
    assert [q["queue"] for q in report["queues"]] == [
        f"{resource_prefix}-{r}" for r in ("executor", "adhoc", "notifier")
    ]
    assert all(q["exists"] and q["dlq_exists"] for q in report["queues"])
    assert "notifier: unreachable" in result.err


def test_doctor_passes_a_bootstrapped_deployment(cli: Cli):
    result = cli.run("-o", "json", "doctor")
    assert result.code == 0, result.err
    findings = result.json()["findings"]
    assert [f for f in findings if f["level"] in ("error", "warning")] == []
    checked = {(f["resource"], f["check"]) for f in findings if f["level"] == "ok"}
    assert len(checked) >= 20


def test_doctor_finds_a_deliberately_misconfigured_bucket(cli: Cli, resource_prefix: str, moto_server: MotoServer):
    # GIVEN a bootstrapped deployment whose bucket someone "simplified"
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1")
    bucket = f"{resource_prefix}-runs"
    s3.delete_public_access_block(Bucket=bucket)
    s3.delete_bucket_encryption(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "everything-cold",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}],
                }
            ]
        },
    )
    sqs = boto3.client("sqs", endpoint_url=moto_server.url, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=f"{resource_prefix}-notifier")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    # AND a DataSync task writing to it with options other than the reference's
    datasync = boto3.client("datasync", endpoint_url=moto_server.url, region_name="us-east-1")
    source = datasync.create_location_smb(
        ServerHostname="nas.lab",
        Subdirectory="/sequencers",
        User="svc",
        Password="x",
        AgentArns=["arn:aws:datasync:us-east-1:123456789012:agent/agent-0123456789abcdef0"],
    )
    destination = datasync.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{bucket}", S3Config={"BucketAccessRoleArn": "arn:aws:iam::123456789012:role/ds"}
    )
    task = datasync.create_task(
        SourceLocationArn=source["LocationArn"],
        DestinationLocationArn=destination["LocationArn"],
        Name=f"{resource_prefix}-sequencers",
        Options={"VerifyMode": "NONE", "TransferMode": "ALL"},
    )
    # WHEN doctor checks it
    result = cli.run("-o", "json", "doctor")
    # THEN it exits 1 and names each problem with a fix
    assert result.code == 1, result.err
    findings = {(f["check"], f["level"]): f for f in result.json()["findings"]}
    for check in ("block public access", "encryption", "versioning", "lifecycle adhoc/", "redrive"):
        assert (check, "error") in findings, check
        assert findings[(check, "error")]["fix"], check
    assert "versioning is suspended" in findings[("versioning", "error")]["message"]
    assert ("lifecycle abort incomplete multipart uploads", "warning") in findings
    options = findings[("options", "warning")]
    assert options["resource"] == f"{resource_prefix}-sequencers"
    assert "VerifyMode=NONE, expected ONLY_FILES_TRANSFERRED" in options["message"]
    assert task["TaskArn"] in options["fix"]
    assert "finding(s) need fixing" in result.err
    # AND the table for people shows the same, each with its fix
    table = cli.run("doctor")
    assert table.code == 1
    assert "put-public-access-block" in table.out
    assert "put-bucket-versioning" in table.out


def test_the_documented_request_command_works_as_printed(cli: Cli, resource_prefix: str):
    # GIVEN the command in docs/transfer-requested.md ("With the seqferry command line"), without --wait
    doc = (REPO / "docs" / "transfer-requested.md").read_text()
    block = doc.split("## With the seqferry command line", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    args = shlex.split(block.replace("\\\n", " "))
    assert args[:2] == ["seqferry", "request"]
    assert "--wait" in args
    args.remove("--wait")
    tap = BusTap(resource_prefix, sources=["seqferry.cli"])
    # WHEN it runs
    result = cli.run(*args[1:])
    # THEN the event carries what the page says
    assert result.code == 0, result.err
    (detail,) = tap.wait_for(lambda d: len(d) == 1)
    assert detail["includes"] == [a for a in args if a.startswith("/")]
    assert detail["reason"] == "re-transfer after NAS outage"
