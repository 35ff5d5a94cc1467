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


def deliveries(settings: ServiceSettings, queue: str) -> list[tuple[str, str]]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        for message in messages:
            body = json.loads(message["Body"])
            found.append((body["source"], body["detail-type"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(found)


def test_rules_deliver_each_event_only_from_the_sources_allowed_to_send_it(
    moto_server: object, resource_prefix: str
) -> None:
    # GIVEN the bus and rules bootstrap creates (moto evaluates the event patterns as EventBridge does)
    settings = ServiceSettings(prefix=resource_prefix, environment="test")
    bootstrap(settings)
    names = settings.names
    # WHEN genuine events and spoofed ones (a detail-type put under someone else's source) are put on the bus
    sent = [
        ("seqferry.scheduler", "Transfer Window Opened"),
        ("lims.lab.example", "Transfer Window Opened"),  # only the scheduler opens windows
        ("seqferry.adhoc", "Transfer Requested"),
        ("lims.lab.example", "Transfer Requested"),  # the public contract: any source of one's own ...
        ("aws.datasync", "Transfer Requested"),  # ... but never an AWS service's
        ("seqferry.executor", "Transfer Execution State Changed"),
        ("seqferry.adhoc", "Transfer Execution State Changed"),  # only the executor reports executions
        ("seqferry.executor.evil", "Transfer Execution State Changed"),
    ]
    events = boto3.client("events")
    for source, detail_type in sent:
        entry = {"EventBusName": names.bus, "Source": source, "DetailType": detail_type, "Detail": "{}"}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    # THEN each queue received exactly the trusted ones
    assert deliveries(settings, names.executor_queue.name) == [
        ("lims.lab.example", "Transfer Requested"),
        ("seqferry.adhoc", "Transfer Requested"),
        ("seqferry.scheduler", "Transfer Window Opened"),
    ]
    assert deliveries(settings, names.notifier_queue.name) == [
        ("seqferry.executor", "Transfer Execution State Changed")
    ]
