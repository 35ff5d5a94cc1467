"""`seqferry doctor`: read a deployment's configuration from AWS and check it (:mod:`seqferry_cli.checks`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import RenderableType

from seqferry_cli import checks
from seqferry_cli.checks import Finding
from seqferry_cli.context import CliContext
from seqferry_cli.errors import OutcomeError
from seqferry_cli.output import styled, table
from seqferry_shared.resources import QueueSpec, ResourceNames, RuleSpec

T = TypeVar("T")
_ABSENT = {
    "NoSuchBucket",
    "404",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchLifecycleConfiguration",
    "NoSuchBucketPolicy",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
    "NotFound",
}


def _or_none(call: Callable[[], T]) -> T | None:
    """The answer, or None when AWS says the thing is not there (any other error propagates)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - botocore loads only when doctor runs

    try:
        return call()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in _ABSENT:
            return None
        raise


class Inspector:
    """Reads what checks need; one method per area, each returning findings."""

    def __init__(self, cli: CliContext) -> None:
        self.names: ResourceNames = cli.settings.names
        self.plain_http = (cli.settings.aws_endpoint_url or "").startswith("http://")
        self.s3 = cli.aws.client("s3")
        self.sqs = cli.aws.client("sqs")
        self.events = cli.aws.client("events")
        self.ddb = cli.aws.client("dynamodb")
        self.sns = cli.aws.client("sns")
        self.datasync = cli.aws.client("datasync")
        self.queue_arns: dict[str, str] = {}

    def bucket(self) -> list[Finding]:
        b = self.names.bucket
        if _or_none(lambda: self.s3.head_bucket(Bucket=b)) is None:
            return [checks.presence("bucket", b, False, "the destination bucket")]
        encryption = _or_none(lambda: self.s3.get_bucket_encryption(Bucket=b))
        bpa = _or_none(lambda: self.s3.get_public_access_block(Bucket=b))
        policy = _or_none(lambda: self.s3.get_bucket_policy(Bucket=b))
        lifecycle = _or_none(lambda: self.s3.get_bucket_lifecycle_configuration(Bucket=b))
        return [
            checks.bucket_encryption(b, (encryption or {}).get("ServerSideEncryptionConfiguration")),
            checks.public_access_block(b, (bpa or {}).get("PublicAccessBlockConfiguration")),
            checks.versioning(b, self.s3.get_bucket_versioning(Bucket=b).get("Status")),
            checks.tls_only(b, json.loads(policy["Policy"]) if policy else None, plain_http_endpoint=self.plain_http),
            *checks.lifecycle(b, (lifecycle or {}).get("Rules")),
            checks.access_logging(b, self.s3.get_bucket_logging(Bucket=b)),
            checks.adhoc_notifications(
                b,
                self.s3.get_bucket_notification_configuration(Bucket=b),
                self.queue_arns.get(self.names.adhoc_queue.name),
            ),
        ]

    def _attributes(self, name: str) -> dict[str, str] | None:
        url = _or_none(lambda: self.sqs.get_queue_url(QueueName=name)["QueueUrl"])
        if url is None:
            return None
        attributes: dict[str, str] = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.queue_arns[name] = attributes["QueueArn"]
        return attributes

    def queue(self, spec: QueueSpec) -> list[Finding]:
        return checks.queue(spec, self._attributes(spec.name), self._attributes(spec.dlq_name))

    def bus_and_rules(self) -> list[Finding]:
        bus = _or_none(lambda: self.events.describe_event_bus(Name=self.names.bus))
        findings = [checks.presence("bus", self.names.bus, bus is not None, "the event bus")]
        for spec in self.names.rules:
            description = self._rule(spec)
            targets = (
                self.events.list_targets_by_rule(Rule=spec.name, EventBusName=spec.bus).get("Targets", [])
                if description
                else []
            )
            findings += checks.rule(spec, description, targets, self.queue_arns.get(spec.queue))
        return findings

    def _rule(self, spec: RuleSpec) -> dict[str, Any] | None:
        return _or_none(lambda: self.events.describe_rule(Name=spec.name, EventBusName=spec.bus))

    def table_and_topic(self) -> list[Finding]:
        table_exists = _or_none(lambda: self.ddb.describe_table(TableName=self.names.table)) is not None
        topics = [
            t["TopicArn"] for page in self.sns.get_paginator("list_topics").paginate() for t in page.get("Topics", [])
        ]
        topic_exists = any(arn.rsplit(":", 1)[-1] == self.names.topic for arn in topics)
        return [
            checks.presence("table", self.names.table, table_exists, "the state table"),
            checks.presence("topic", self.names.topic, topic_exists, "the notification topic"),
        ]

    def datasync_tasks(self, task_arns: list[str]) -> list[Finding]:
        """The given tasks, or every task whose destination is the bucket."""
        if not task_arns:
            for page in self.datasync.get_paginator("list_tasks").paginate():
                for task in page.get("Tasks", []):
                    described = self.datasync.describe_task(TaskArn=task["TaskArn"])
                    destination = self._s3_location(described["DestinationLocationArn"])
                    # DescribeLocationS3 names the bucket only in its URI: s3://<bucket>/<subdirectory>
                    uri = str((destination or {}).get("LocationUri", ""))
                    if uri.removeprefix("s3://").split("/", 1)[0] == self.names.bucket:
                        task_arns.append(task["TaskArn"])
            if not task_arns:
                return [
                    Finding(
                        "info",
                        "datasync",
                        self.names.bucket,
                        "tasks",
                        "no DataSync task writes to the bucket (the local backend needs none; "
                        "name tasks with --datasync-task)",
                    )
                ]
        findings: list[Finding] = []
        for arn in task_arns:
            described = self._task(arn)
            if described is None:
                findings.append(checks.presence("datasync", arn, False, "the DataSync task"))
            else:
                findings += checks.datasync_task(described)
        return findings

    def _s3_location(self, arn: str) -> dict[str, Any] | None:
        # Not an S3 location (InvalidRequestException) is as good as absent here.
        try:
            return _or_none(lambda: self.datasync.describe_location_s3(LocationArn=arn))
        except self.datasync.exceptions.InvalidRequestException:
            return None

    def _task(self, arn: str) -> dict[str, Any] | None:
        try:
            return _or_none(lambda: self.datasync.describe_task(TaskArn=arn))
        except self.datasync.exceptions.InvalidRequestException:
            return None


def _render(findings: list[Finding], verbose: bool) -> Iterable[RenderableType]:
    shown = [f for f in findings if verbose or f.level != "ok"]
    counts = {level: sum(1 for f in findings if f.level == level) for level in ("error", "warning", "ok", "info")}
    if shown:
        yield table(
            None,
            ["level", "resource", "check", "finding", "fix"],
            ([styled(f.level), f.resource, f.check, f.message, f.fix] for f in shown),
        )
    yield (
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['ok']} check(s) passed"
        + ("" if verbose else " (--verbose lists them)")
    )


def doctor(
    ctx: typer.Context,
    *,
    datasync_task: Annotated[
        list[str] | None,
        typer.Option(
            "--datasync-task", help="DataSync task ARN to check (repeat); default: every task writing to the bucket."
        ),
    ] = None,
    no_datasync: Annotated[bool, typer.Option("--no-datasync", help="Skip the DataSync checks.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passed checks too.")] = False,
) -> None:
    """Check a deployment against what seqferry needs and recommends; every finding says how to fix it.

    Bucket: SSE-KMS encryption, Block Public Access, versioning, TLS-only policy, lifecycle rules (archive
    classes, noncurrent versions, aborted uploads, adhoc/ never archived), access logs, adhoc/ notifications.
    Queues: each with a dead-letter queue and a redrive policy, encrypted, dead letters waiting. Bus, rules
    (enabled, pattern, target), state table, topic. DataSync tasks: options TransferMode=CHANGED,
    VerifyMode=ONLY_FILES_TRANSFERRED, LogLevel=TRANSFER, Atime=BEST_EFFORT, Mtime=PRESERVE, and a log group.
    Exit 1 when a finding is an error (with --strict, a warning too).

    [bold]Examples[/bold]

      seqferry doctor

      seqferry --profile lab-prod --region eu-west-1 doctor --verbose

      seqferry -o json doctor | jq '.findings[] | select(.level == "error")'
    """
    cli: CliContext = ctx.obj
    inspector = Inspector(cli)
    findings: list[Finding] = []
    for spec in cli.settings.names.queues:
        findings += inspector.queue(spec)
    findings += inspector.bus_and_rules()
    findings += inspector.bucket()
    findings += inspector.table_and_topic()
    if not no_datasync:
        findings += inspector.datasync_tasks(list(datasync_task or []))
    data = {"findings": [f.to_json() for f in findings]}
    cli.out.result(data, lambda: _render(findings, verbose))
    errors = [f for f in findings if f.level == "error" or (strict and f.level == "warning")]
    if errors:
        raise OutcomeError(
            f"{len(errors)} finding(s) need fixing", details=[f"{f.resource}: {f.check}: {f.message}" for f in errors]
        )
