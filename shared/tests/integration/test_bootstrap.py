import json
from typing import Any

import boto3

from seqferry_shared.bootstrap import bootstrap
from seqferry_shared.settings import ServiceSettings


def snapshot(settings: ServiceSettings) -> dict[str, Any]:
    names = settings.names
    sqs, events, s3 = boto3.client("sqs"), boto3.client("events"), boto3.client("s3")
    queues = {}
    for spec in names.queues:
        url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"])
        queues[spec.name] = attrs["Attributes"]
    rules = {}
    for bus in (names.bus, "default"):
        for rule in events.list_rules(EventBusName=bus, NamePrefix=names.prefix)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            rules[rule["Name"]] = (rule["EventPattern"], [t["Arn"] for t in targets])
    return {
        "queues": queues,
        "rules": rules,
        "versioning": s3.get_bucket_versioning(Bucket=names.bucket)["Status"],
        "notification": s3.get_bucket_notification_configuration(Bucket=names.bucket)["QueueConfigurations"],
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=names.bucket)["Rules"],
        "encryption": s3.get_bucket_encryption(Bucket=names.bucket)["ServerSideEncryptionConfiguration"],
    }


def test_bootstrap_twice_converges(moto_server: object, resource_prefix: str) -> None:
    # GIVEN a fresh prefix / WHEN bootstrap runs twice / THEN no error and the same resources
    settings = ServiceSettings(prefix=resource_prefix, environment="test")
    first_result = bootstrap(settings)
    first = snapshot(settings)
    second_result = bootstrap(settings)
    assert first_result == second_result
    assert snapshot(settings) == first
    # AND the resources are the declared ones
    assert json.loads(first["queues"][f"{resource_prefix}-executor"]["RedrivePolicy"])["maxReceiveCount"] == 5
    assert set(first["rules"]) == {r.name for r in settings.names.rules}
    assert first["versioning"] == "Enabled"
    assert first["notification"][0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "adhoc/"}]
    assert {r["ID"] for r in first["lifecycle"]} >= {
        "basecalls-to-deep-archive",
        "noncurrent-versions-and-stale-uploads",
    }
