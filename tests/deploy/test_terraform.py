"""deploy/terraform: formatted, valid, its own `terraform test` passes, and it declares the same resources as
the shared declaration that bootstrap creates (names, routing, queue settings, lifecycle).

Offline: providers come from a local plugin directory (SEQFERRY_TF_PLUGIN_DIR, default /opt/tf-plugins) and the
tests run against a mocked AWS provider. Without terraform or the provider, the tests say so and skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deploy_support import TERRAFORM_DIR, run_terraform

from seqferry_shared.bootstrap import lifecycle_rules
from seqferry_shared.events.models import ALL_EVENTS, TransferRequested
from seqferry_shared.resources import ADHOC_PREFIX, STORAGE_CLASS_TAG, ResourceNames

# The DataSync rule exists once a task does; it is a counted resource (its one instance is [0]).
RULE_RESOURCES = ("to_executor", "to_notifier", "datasync_to_notifier[0]")
# Terraform narrows the DataSync rule to this install's tasks (`resources`), which bootstrap cannot know on an
# emulator: the rest of every pattern must be the same.
RULE_VIEW = (
    '{ bus = r.event_bus_name, pattern = { for k, v in jsondecode(r.event_pattern) : k => v if k != "resources" } }'
)
AGENT_ARN = "arn:aws:datasync:eu-west-1:123456789012:agent/agent-0123456789abcdef0"
TASK_ARN = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"
OIDC_PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"


def test_formatted(tf_env: dict[str, str]) -> None:
    result = run_terraform(["fmt", "-check", "-recursive", "-diff", "-no-color", "."], TERRAFORM_DIR, tf_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_valid(workdir: Path, tf_env: dict[str, str]) -> None:
    result = run_terraform(["validate", "-no-color", "-json"], workdir, tf_env)
    report = json.loads(result.stdout)
    assert report["valid"], report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]


@pytest.mark.slow
def test_terraform_test_suite_passes(workdir: Path, tf_env: dict[str, str]) -> None:
    result = run_terraform(["test", "-no-color", "-filter=tests/plan.tftest.hcl"], workdir, tf_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout


# -- the same resources as shared/src/seqferry_shared/resources.py ------------------------------------------------


def hcl_json(value: Any) -> str:
    """An HCL expression decoding to the same value as ``value`` (JSON string escapes are valid HCL ones)."""
    text = json.dumps(value, sort_keys=True)
    assert "${" not in text
    assert "%{" not in text
    return f"jsondecode({json.dumps(text)})"


def same_json(expression: str, value: Any) -> str:
    """HCL condition: ``expression`` equals ``value`` as JSON (Terraform's == also compares map vs object types)."""
    return f"jsonencode({expression}) == jsonencode({hcl_json(value)})"


def assertion(condition: str, message: str) -> str:
    return f"  assert {{\n    condition     = {condition}\n    error_message = {json.dumps(message)}\n  }}\n"


def lifecycle_view(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts of each lifecycle rule both declarations decide, keyed by rule id."""
    view: dict[str, Any] = {}
    for rule in rules:
        view[rule["ID"]] = {
            "tag": rule["Filter"].get("Tag"),
            "transitions": [[t["StorageClass"], t["Days"]] for t in rule.get("Transitions", [])],
            "expiration": rule.get("Expiration", {}).get("Days"),
            "noncurrent": rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
            "abort": rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
        }
    return view


# The same view built from the plan, in HCL.
TF_LIFECYCLE_VIEW = """{
      for r in aws_s3_bucket_lifecycle_configuration.runs.rule : r.id => {
        tag = (length(one(r.filter).tag) > 0
          ? { Key = one(one(r.filter).tag).key, Value = one(one(r.filter).tag).value }
        : null)
        transitions = [for t in r.transition : [t.storage_class, t.days]]
        expiration  = length(r.expiration) > 0 ? one(r.expiration).days : null
        noncurrent = (length(r.noncurrent_version_expiration) > 0
          ? one(r.noncurrent_version_expiration).noncurrent_days
        : null)
        abort = (length(r.abort_incomplete_multipart_upload) > 0
          ? one(r.abort_incomplete_multipart_upload).days_after_initiation
        : null)
      }
    }"""


# What each role may put on the bus, read back from the rendered policies.
TF_PUT_EVENTS_VIEW = """{
      for service, policy in aws_iam_role_policy.service : service => [
        for s in jsondecode(policy.policy).Statement : {
          sources      = s.Condition["ForAllValues:StringEquals"]["events:source"]
          detail_types = sort(s.Condition["ForAllValues:StringEquals"]["events:detail-type"])
          null         = s.Condition.Null
        } if contains(flatten([s.Action]), "events:PutEvents")
      ]
    }"""
NOT_NULL = {"events:source": "false", "events:detail-type": "false"}


def producers(services: list[str]) -> dict[str, list[dict[str, Any]]]:
    """From the event models: each service may put its own source and the detail-types it produces, nothing else."""
    expected: dict[str, list[dict[str, Any]]] = {}
    for model in ALL_EVENTS:
        service = model.SOURCE.removeprefix("seqferry.")
        if service in services:
            view = expected.setdefault(service, [{"sources": [model.SOURCE], "detail_types": [], "null": NOT_NULL}])
            view[0]["detail_types"] = sorted([*view[0]["detail_types"], model.DETAIL_TYPE])
    return expected


def lims_run() -> str:
    """The LIMS role may put Transfer Requested under its own sources and nothing else."""
    policy = "jsondecode(one(aws_iam_role_policy.lims).policy).Statement"
    statement = {
        "Sid": "RequestTransfers",
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Condition": {
            "ForAllValues:StringEquals": {
                "events:source": ["lims.lab.example"],
                "events:detail-type": [TransferRequested.DETAIL_TYPE],
            },
            "Null": NOT_NULL,
        },
    }
    view = f"[for s in {policy} : {{ Sid = s.Sid, Effect = s.Effect, Action = s.Action, Condition = s.Condition }}]"
    body = [
        assertion(same_json(view, [statement]), "the LIMS role may only put Transfer Requested under its sources"),
        assertion('one(aws_iam_role.lims).name == "lab-lims" && output.lims_role_arn != null', "the LIMS role exists"),
    ]
    variables = (
        '    prefix              = "lab"\n'
        '    lims_principal_arns = ["arn:aws:iam::123456789012:role/lims-service"]\n'
        '    lims_event_sources  = ["lims.lab.example"]\n'
    )
    return f'run "lims_role" {{\n  command = apply\n\n  variables {{\n{variables}  }}\n\n{"".join(body)}}}\n'


def names_run(label: str, names: ResourceNames, bucket: str | None) -> str:
    queues = {"executor": names.executor_queue, "adhoc": names.adhoc_queue, "notifier": names.notifier_queue}
    rules = {rule.name: {"bus": rule.bus, "pattern": rule.pattern} for rule in names.rules}
    tf_rules = ", ".join(f"aws_cloudwatch_event_rule.{r}" for r in RULE_RESOURCES)
    variables = f'    prefix = "{names.prefix}"\n'
    variables += f'    datasync_agent_arns = ["{AGENT_ARN}"]\n    nas_server_hostname = "nas.lab.example.org"\n'
    if bucket is not None:
        variables += f'    bucket_name = "{bucket}"\n'
    body = [
        assertion(f'aws_cloudwatch_event_bus.main.name == "{names.bus}"', "bus name"),
        assertion(f'aws_s3_bucket.runs.bucket == "{names.bucket}"', "bucket name"),
        assertion(f'aws_s3_bucket.logs.bucket == "{names.log_bucket}"', "log bucket name"),
        assertion(f'aws_dynamodb_table.state.name == "{names.table}"', "table name"),
        assertion(f'aws_sns_topic.notifications.name == "{names.topic}"', "topic name"),
        assertion(
            f'aws_cloudwatch_log_group.transfers.name == "{names.transfer_log_group}"', "transfer log group name"
        ),
        assertion(
            same_json(f"{{ for r in [{tf_rules}] : r.name => {RULE_VIEW} }}", rules),
            "rules: names, buses and event patterns",
        ),
        assertion(
            same_json(
                "jsondecode(aws_cloudwatch_event_rule.datasync_to_notifier[0].event_pattern).resources",
                [{"prefix": f"{TASK_ARN}/execution/"}],
            ),
            "the DataSync rule delivers this install's task only",
        ),
        assertion(
            f'one(aws_s3_bucket_notification.runs.queue).filter_prefix == "{ADHOC_PREFIX}"',
            "adhoc notification prefix",
        ),
        assertion(same_json(TF_LIFECYCLE_VIEW, lifecycle_view(lifecycle_rules(names))), "lifecycle rules"),
        assertion(
            same_json(TF_PUT_EVENTS_VIEW, producers(["scheduler", "executor", "adhoc", "notifier"])),
            "each role puts only its own source and its own detail-types",
        ),
        assertion("length(aws_iam_role.lims) == 0", "no LIMS role unless asked for"),
    ]
    for role, spec in queues.items():
        work, dlq = f'aws_sqs_queue.work["{role}"]', f'aws_sqs_queue.dlq["{role}"]'
        conditions = [
            f'{work}.name == "{spec.name}"',
            f'{dlq}.name == "{spec.dlq_name}"',
            f"jsondecode({work}.redrive_policy).maxReceiveCount == {spec.max_receive_count}",
            f"{work}.visibility_timeout_seconds == {spec.visibility_timeout_s}",
            f"{work}.message_retention_seconds == {spec.retention_s}",
        ]
        body.append(assertion(" && ".join(conditions), f"{role} queue settings"))
    return f'run "{label}" {{\n  command = apply\n\n  variables {{\n{variables}  }}\n\n{"".join(body)}}}\n'


@pytest.mark.slow
def test_same_resources_as_the_shared_declaration(workdir: Path, tf_env: dict[str, str]) -> None:
    # GIVEN assertions generated from the Python declaration that bootstrap creates resources from
    assert STORAGE_CLASS_TAG == "seqferry-class"
    runs = [
        names_run("default_bucket", ResourceNames.for_prefix("lab"), None),
        names_run("explicit_bucket", ResourceNames.for_prefix("lab2", bucket="lab-sequencing"), "lab-sequencing"),
        lims_run(),
    ]
    header = (
        'mock_provider "aws" {\n  source = "./tests/mocks"\n}\n\n'
        'variables {\n  aws_region = "eu-west-1"\n'
        f'  eks_oidc_provider_arn = "{OIDC_PROVIDER}"\n'
        "}\n\n"
    )
    (workdir / "tests" / "shared_names.tftest.hcl").write_text(header + "\n".join(runs), encoding="utf-8")

    # WHEN terraform applies the configuration against the mocked provider and checks them
    result = run_terraform(["test", "-no-color", "-filter=tests/shared_names.tftest.hcl"], workdir, tf_env)

    # THEN every one holds
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 0 failed" in result.stdout
