"""Doctor's checks as pure functions of what AWS describes: what bootstrap creates passes, each deviation is named."""

from __future__ import annotations

import json

import pytest

from seqferry_cli import checks
from seqferry_shared.bootstrap import lifecycle_rules
from seqferry_shared.resources import ResourceNames

NAMES = ResourceNames.for_prefix("lab")
BUCKET = NAMES.bucket


def encrypted(algorithm: str) -> dict:
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]}


def levels(findings):
    return {(f.check, f.level) for f in findings}


def test_what_bootstrap_writes_passes_every_bucket_check():
    # GIVEN the bucket settings seqferry-bootstrap writes (its own declarations, not a copy)
    policy = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    findings = [
        checks.bucket_encryption(BUCKET, encrypted("aws:kms")),
        checks.public_access_block(BUCKET, dict.fromkeys(checks._BPA_FLAGS, True)),
        checks.versioning(BUCKET, "Enabled"),
        checks.tls_only(BUCKET, policy, plain_http_endpoint=False),
        *checks.lifecycle(BUCKET, lifecycle_rules(NAMES)),
        checks.access_logging(BUCKET, {"LoggingEnabled": {"TargetBucket": NAMES.log_bucket}}),
    ]
    # THEN nothing needs fixing
    assert [f for f in findings if f.level != "ok"] == []


@pytest.mark.parametrize(
    ("finding", "level", "fix_contains"),
    [
        (checks.bucket_encryption(BUCKET, None), "error", "put-bucket-encryption"),
        (
            checks.bucket_encryption(BUCKET, encrypted("AES256")),
            "warning",
            "aws:kms",
        ),
        (checks.public_access_block(BUCKET, None), "error", "put-public-access-block"),
        (checks.public_access_block(BUCKET, {"BlockPublicAcls": True}), "error", "RestrictPublicBuckets=true"),
        (checks.versioning(BUCKET, "Suspended"), "error", "Status=Enabled"),
        (checks.versioning(BUCKET, None), "error", "Status=Enabled"),
        (checks.tls_only(BUCKET, None, plain_http_endpoint=False), "error", "aws:SecureTransport"),
        (checks.tls_only(BUCKET, None, plain_http_endpoint=True), "info", ""),
        (checks.access_logging(BUCKET, {}), "warning", "bootstrap"),
    ],
)
def test_each_bucket_deviation_is_named_with_a_fix(finding, level, fix_contains):
    assert finding.level == level
    assert fix_contains in finding.fix
    if level == "info":
        assert finding.fix == ""


def test_public_access_block_names_the_flags_that_are_off():
    finding = checks.public_access_block(BUCKET, {"BlockPublicAcls": True, "IgnorePublicAcls": True})
    assert "off for BlockPublicPolicy, RestrictPublicBuckets" in finding.message


def test_lifecycle_that_archives_everything_also_archives_manifests():
    # GIVEN a lifecycle rule without a tag filter moving every object to Deep Archive
    rules = [
        {
            "ID": "all-to-glacier",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Transitions": [{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}],
        },
    ]
    found = levels(checks.lifecycle(BUCKET, rules))
    # THEN adhoc/ being archived is an error, and the missing recommended rules are warnings
    assert ("lifecycle adhoc/", "error") in found
    assert ("lifecycle basecalls", "warning") in found
    assert ("lifecycle abort incomplete multipart uploads", "warning") in found
    assert levels(checks.lifecycle(BUCKET, None)) == {("lifecycle", "warning")}


def test_a_rule_limited_to_another_prefix_leaves_adhoc_alone():
    rules = [
        *lifecycle_rules(NAMES),
        {"ID": "old-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}},
    ]
    assert all(f.level == "ok" for f in checks.lifecycle(BUCKET, rules))


def test_adhoc_notifications_must_reach_the_adhoc_queue():
    arn = "arn:aws:sqs:us-east-1:123456789012:lab-adhoc"
    good = {
        "QueueConfigurations": [
            {
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "adhoc/"}]}},
            }
        ]
    }
    assert checks.adhoc_notifications(BUCKET, good, arn).level == "ok"
    assert checks.adhoc_notifications(BUCKET, good, arn + "-other").level == "error"
    assert checks.adhoc_notifications(BUCKET, {}, arn).level == "error"


def test_queue_needs_its_dead_letter_queue_and_redrive():
    spec = NAMES.executor_queue
    dlq = {"QueueArn": f"arn:aws:sqs:us-east-1:1:{spec.dlq_name}", "ApproximateNumberOfMessages": "0"}
    redrive = json.dumps({"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5})
    good = {"RedrivePolicy": redrive, "SqsManagedSseEnabled": "true"}
    assert {f.level for f in checks.queue(spec, good, dlq)} == {"ok"}
    assert levels(checks.queue(spec, {"SqsManagedSseEnabled": "true"}, dlq)) >= {("redrive", "error")}
    assert levels(checks.queue(spec, good, None)) >= {("exists", "error"), ("redrive", "error")}
    assert levels(checks.queue(spec, None, None)) == {("exists", "error")}
    waiting = checks.queue(spec, good, {**dlq, "ApproximateNumberOfMessages": "3"})
    assert ("dead letters", "warning") in levels(waiting)
    assert "start-message-move-task" in next(f.fix for f in waiting if f.check == "dead letters")


def test_rules_must_route_what_their_queue_needs():
    spec = NAMES.rules[0]  # to the executor: Transfer Window Opened + Transfer Requested
    arn = "arn:aws:sqs:us-east-1:1:lab-executor"
    described = {"State": "ENABLED", "EventPattern": json.dumps(spec.pattern)}
    assert {f.level for f in checks.rule(spec, described, [{"Arn": arn}], arn)} == {"ok"}
    # extra conditions (a source allow-list) still let the declared detail-types through
    stricter = {**described, "EventPattern": json.dumps({**spec.pattern, "source": ["lims.lab"]})}
    assert {f.level for f in checks.rule(spec, stricter, [{"Arn": arn}], arn)} == {"ok"}
    narrow = {**described, "EventPattern": json.dumps({"detail-type": ["Transfer Window Opened"]})}
    assert ("pattern", "error") in levels(checks.rule(spec, narrow, [{"Arn": arn}], arn))
    assert ("enabled", "error") in levels(checks.rule(spec, {**described, "State": "DISABLED"}, [{"Arn": arn}], arn))
    assert ("target", "error") in levels(checks.rule(spec, described, [], arn))
    assert levels(checks.rule(spec, None, [], arn)) == {("exists", "error")}


def test_datasync_task_options_are_the_references():
    task = {
        "TaskArn": "arn:aws:datasync:us-east-1:1:task/task-0",
        "Name": "sequencers",
        "Status": "AVAILABLE",
        "Options": dict(checks.DATASYNC_OPTIONS),
        "CloudWatchLogGroupArn": "arn:aws:logs:us-east-1:1:log-group:x",
    }
    assert {f.level for f in checks.datasync_task(task)} == {"ok"}
    drifted = checks.datasync_task(
        {
            **task,
            "Options": {**task["Options"], "VerifyMode": "NONE", "TransferMode": "ALL"},
            "CloudWatchLogGroupArn": None,
            "Status": "UNAVAILABLE",
        }
    )
    by_check = {f.check: f for f in drifted}
    assert by_check["options"].level == "warning"
    assert "VerifyMode=NONE, expected ONLY_FILES_TRANSFERRED" in by_check["options"].message
    assert "TransferMode=CHANGED,VerifyMode=ONLY_FILES_TRANSFERRED,LogLevel=TRANSFER" in by_check["options"].fix
    assert by_check["log group"].level == "warning"
    assert by_check["status"].level == "error"
