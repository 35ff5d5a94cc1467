"""Create every seqferry resource idempotently against any endpoint (AWS, moto server, LocalStack).

Run ``seqferry-bootstrap`` (or ``python -m seqferry_shared.bootstrap``); running it again converges to the same
resources and reports no error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import typer
from botocore.exceptions import ClientError

from seqferry_shared.aws import sync_client
from seqferry_shared.resources import (
    ADHOC_PREFIX,
    ALIGNMENTS,
    BASECALLS,
    READS,
    RUN_DATA,
    STORAGE_CLASS_TAG,
    TRANSFER_LOG_RETENTION_DAYS,
    VARIANTS,
    QueueSpec,
    ResourceNames,
)
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.state.kinds import LISTING_INDEX, LISTING_PK, LISTING_SK, PK, SK, TTL

log = logging.getLogger(__name__)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Bootstrapper:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.names: ResourceNames = settings.names
        self.sqs = sync_client("sqs", settings)
        self.events = sync_client("events", settings)
        self.s3 = sync_client("s3", settings)
        self.ddb = sync_client("dynamodb", settings)
        self.sns = sync_client("sns", settings)
        self.sts = sync_client("sts", settings)
        self.logs = sync_client("logs", settings)
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        endpoint = settings.endpoint_url_for("s3") or ""
        # A plain-http emulator evaluates bucket policies too; denying non-TLS there would deny everything.
        self.tls_only = not endpoint.startswith("http://")
        if not self.tls_only:
            log.warning(
                "endpoint %s is plain http: bucket policy denying non-TLS access not applied",
                endpoint,
            )

    def run(self) -> dict[str, Any]:
        self.table()
        for spec in self.names.queues:
            self.queue(spec)
        self.bus_and_rules()
        self.buckets()
        self.transfer_log()
        topic_arn = self.sns.create_topic(Name=self.names.topic)["TopicArn"]
        return {
            "bus": self.names.bus,
            "bucket": self.names.bucket,
            "table": self.names.table,
            "topic": topic_arn,
            "transfer_log_group": self.names.transfer_log_group,
            "queues": dict(self.queue_urls),
        }

    # -- DynamoDB ---------------------------------------------------------------------------------------------
    def table(self) -> None:
        try:
            self.ddb.create_table(
                TableName=self.names.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name in (PK, SK, LISTING_PK, LISTING_SK)
                ],
                KeySchema=[
                    {"AttributeName": PK, "KeyType": "HASH"},
                    {"AttributeName": SK, "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": LISTING_INDEX,
                        "KeySchema": [
                            {"AttributeName": LISTING_PK, "KeyType": "HASH"},
                            {"AttributeName": LISTING_SK, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                SSESpecification={"Enabled": True},
            )
            self.ddb.get_waiter("table_exists").wait(TableName=self.names.table)
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise
        ttl = self.ddb.describe_time_to_live(TableName=self.names.table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            self.ddb.update_time_to_live(
                TableName=self.names.table,
                TimeToLiveSpecification={
                    "Enabled": True,
                    "AttributeName": TTL,
                },
            )

    # -- SQS --------------------------------------------------------------------------------------------------
    def _ensure_queue(self, name: str, attributes: dict[str, str]) -> str:
        try:
            url = str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        except ClientError as exc:
            if _code(exc) not in (
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            ):
                raise
            url = str(self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_urls[name] = url
        self.queue_arns[name] = arn
        return url

    def queue(self, spec: QueueSpec) -> None:
        base = {
            "MessageRetentionPeriod": str(spec.retention_s),
            "SqsManagedSseEnabled": "true",
        }
        self._ensure_queue(spec.dlq_name, base)
        redrive = {
            "deadLetterTargetArn": self.queue_arns[spec.dlq_name],
            "maxReceiveCount": spec.max_receive_count,
        }
        url = self._ensure_queue(
            spec.name,
            {
                **base,
                "VisibilityTimeout": str(spec.visibility_timeout_s),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowEventBridgeAndS3",
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "s3.amazonaws.com"]},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arns[spec.name],
                }
            ],
        }
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})

    # -- EventBridge ------------------------------------------------------------------------------------------
    def bus_and_rules(self) -> None:
        try:
            self.events.create_event_bus(Name=self.names.bus)
        except ClientError as exc:
            if _code(exc) != "ResourceAlreadyExistsException":
                raise
        for rule in self.names.rules:
            self.events.put_rule(
                Name=rule.name,
                EventBusName=rule.bus,
                EventPattern=json.dumps(rule.pattern),
                State="ENABLED",
                Description=f"seqferry: deliver to {rule.queue}",
            )
            self.events.put_targets(
                Rule=rule.name,
                EventBusName=rule.bus,
                Targets=[{"Id": "queue", "Arn": self.queue_arns[rule.queue]}],
            )

    # -- CloudWatch Logs ------------------------------------------------------------------------------------
    def transfer_log(self) -> None:
        group = self.names.transfer_log_group
        try:
            self.logs.create_log_group(logGroupName=group)
        except ClientError as exc:
            if _code(exc) != "ResourceAlreadyExistsException":
                raise
        self.logs.put_retention_policy(logGroupName=group, retentionInDays=TRANSFER_LOG_RETENTION_DAYS)

    # -- S3 ---------------------------------------------------------------------------------------------------
    def _create_bucket(self, name: str, *, log_delivery: bool = False) -> None:
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.settings.aws_region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.aws_region}
        try:
            self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        self.s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        statements: list[dict[str, Any]] = []
        if self.tls_only:
            statements.append(
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            )
        if log_delivery:
            statements.append(
                {
                    "Sid": "S3ServerAccessLogsDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{name}/*",
                }
            )
        if statements:
            policy = {"Version": "2012-10-17", "Statement": statements}
            self.s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        self.s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )

    def buckets(self) -> None:
        names = self.names
        self._create_bucket(names.log_bucket, log_delivery=True)
        self._create_bucket(names.bucket)
        self.s3.put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.put_bucket_logging(
            Bucket=names.bucket,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": names.log_bucket,
                    "TargetPrefix": "s3/",
                }
            },
        )
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=names.bucket,
            LifecycleConfiguration={"Rules": lifecycle_rules(names)},
        )
        self.s3.put_bucket_notification_configuration(
            Bucket=names.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": "adhoc-manifests",
                        "QueueArn": self.queue_arns[names.adhoc_queue.name],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": ADHOC_PREFIX}]}},
                    }
                ]
            },
        )


def lifecycle_rules(names: ResourceNames) -> list[dict[str, Any]]:
    spec = names.lifecycle

    def tagged(klass: str) -> dict[str, Any]:
        return {"Tag": {"Key": STORAGE_CLASS_TAG, "Value": klass}}

    rules: list[dict[str, Any]] = [
        {
            "ID": "basecalls-to-deep-archive",
            "Status": "Enabled",
            "Filter": tagged(BASECALLS),
            "Transitions": [
                {
                    "Days": spec.basecalls_to_deep_archive_days,
                    "StorageClass": "DEEP_ARCHIVE",
                }
            ],
        },
        {
            "ID": "alignments-to-deep-archive",
            "Status": "Enabled",
            "Filter": tagged(ALIGNMENTS),
            "Transitions": [
                {
                    "Days": spec.alignments_to_deep_archive_days,
                    "StorageClass": "DEEP_ARCHIVE",
                }
            ],
        },
        {
            "ID": "variants-to-standard-ia",
            "Status": "Enabled",
            "Filter": tagged(VARIANTS),
            "Transitions": [
                {
                    "Days": spec.variants_to_standard_ia_days,
                    "StorageClass": "STANDARD_IA",
                }
            ],
        },
        {
            "ID": "run-data-to-glacier-ir",
            "Status": "Enabled",
            "Filter": tagged(RUN_DATA),
            "Transitions": [
                {
                    "Days": spec.run_data_to_glacier_ir_days,
                    "StorageClass": "GLACIER_IR",
                }
            ],
        },
        {
            "ID": "noncurrent-versions-and-stale-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": spec.noncurrent_expire_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": spec.abort_multipart_days},
        },
    ]
    if spec.reads_expire_days is not None:
        rules.append(
            {
                "ID": "reads-expiry",
                "Status": "Enabled",
                "Filter": tagged(READS),
                "Expiration": {"Days": spec.reads_expire_days},
            }
        )
    return rules


def bootstrap(settings: ServiceSettings) -> dict[str, Any]:
    return Bootstrapper(settings).run()


def main() -> None:
    def command() -> None:
        """Create or converge every seqferry resource (bus, rules, queues, bucket, table, topic)."""
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        settings = ServiceSettings()
        result = bootstrap(settings)
        typer.echo(json.dumps(result, indent=2))

    typer.run(command)


if __name__ == "__main__":
    main()
