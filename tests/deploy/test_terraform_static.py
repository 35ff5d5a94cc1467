"""deploy/terraform read without Terraform: every file is valid HCL and says what the docs promise.

`test_terraform.py` runs `terraform fmt/validate/test` where Terraform and the AWS provider are installed; on a
machine without them (the provider comes only from registry.terraform.io) these checks still run, with
python-hcl2's parser: syntax of every `.tf`, `.tftest.hcl` and mock file, and the settings that matter most for
a production install, read from the configuration itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest
from deploy_support import REPO

TERRAFORM_DIR = REPO / "deploy" / "terraform"
HCL_FILES = sorted([*TERRAFORM_DIR.glob("*.tf"), *TERRAFORM_DIR.glob("tests/**/*.hcl")])


def unquote(value: Any) -> Any:
    """python-hcl2 keeps labels and literal strings quoted ('"name"'); expressions stay '${...}'."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(kind: str) -> dict[str, dict[str, Any]]:
    """Every block of one kind across the configuration: 'aws_x.name' (resources) or 'name' (variables)."""
    found: dict[str, dict[str, Any]] = {}
    for path in TERRAFORM_DIR.glob("*.tf"):
        document = unquote(hcl2.loads(path.read_text(encoding="utf-8")))
        for entry in document.get(kind, []):
            for label, body in entry.items():
                if kind == "resource":
                    for name, resource in body.items():
                        found[f"{label}.{name}"] = resource
                else:
                    found[label] = body
    return found


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return blocks("resource")


@pytest.fixture(scope="module")
def variables() -> dict[str, dict[str, Any]]:
    return blocks("variable")


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(TERRAFORM_DIR)))
def test_every_file_is_valid_hcl(path: Path) -> None:
    assert hcl2.loads(path.read_text(encoding="utf-8")) is not None


def test_datasync_log_is_kept_90_days_on_the_stack_key(
    resources: dict[str, dict[str, Any]], variables: dict[str, dict[str, Any]]
) -> None:
    assert variables["datasync_log_retention_days"]["default"] == 90
    group = resources["aws_cloudwatch_log_group.datasync"]
    assert group["retention_in_days"] == "${var.datasync_log_retention_days}"
    assert group["kms_key_id"] == "${aws_kms_key.main.arn}"


def test_state_table_is_encrypted_with_the_stack_key(resources: dict[str, dict[str, Any]]) -> None:
    (encryption,) = resources["aws_dynamodb_table.state"]["server_side_encryption"]
    assert encryption["enabled"] is True
    assert encryption["kms_key_arn"] == "${aws_kms_key.main.arn}"


def test_key_policy_lets_dynamodb_and_the_log_groups_use_the_key(resources: dict[str, dict[str, Any]]) -> None:
    document = unquote(hcl2.loads((TERRAFORM_DIR / "kms.tf").read_text(encoding="utf-8")))
    (policy,) = [entry["aws_iam_policy_document"]["kms"] for entry in document["data"]]
    statements = {s["sid"]: s for s in policy["statement"]}
    dynamodb = statements["StateTableThroughDynamoDb"]
    assert {c["variable"] for c in dynamodb["condition"]} == {"kms:ViaService", "kms:CallerAccount"}
    assert dynamodb["condition"][0]["values"] == ["dynamodb.${local.region}.amazonaws.com"]
    logs = statements["LogGroups"]
    assert logs["principals"][0]["identifiers"] == ["logs.${local.region}.amazonaws.com"]
    groups = logs["condition"][0]["values"]
    assert [g.rsplit(":", 1)[-1] for g in groups] == [
        "/aws/datasync/${var.prefix}",
        "/seqferry/${var.prefix}/transfers",
    ]
    assert resources["aws_cloudwatch_log_group.transfers"]["kms_key_id"] == "${aws_kms_key.main.arn}"


def test_datasync_rule_delivers_only_this_installs_tasks(resources: dict[str, dict[str, Any]]) -> None:
    rule = resources["aws_cloudwatch_event_rule.datasync_to_notifier"]
    assert rule["count"] == "${length(local.datasync_task_arns) > 0 ? 1 : 0}"
    assert 'prefix = "${arn}/execution/"' in rule["event_pattern"]
    assert "resources = [for arn in local.datasync_task_arns" in rule["event_pattern"]


def test_smb_location_beside_nfs_and_the_agent_as_a_resource(
    resources: dict[str, dict[str, Any]], variables: dict[str, dict[str, Any]]
) -> None:
    assert variables["nas_protocol"]["default"] == "NFS"
    assert variables["smb_password"]["sensitive"] is True
    smb = resources["aws_datasync_location_smb.nas"]
    nfs = resources["aws_datasync_location_nfs.nas"]
    assert smb["count"] == '${local.datasync_enabled && var.nas_protocol == "SMB" ? 1 : 0}'
    assert nfs["count"] == '${local.datasync_enabled && var.nas_protocol == "NFS" ? 1 : 0}'
    assert smb["agent_arns"] == "${local.datasync_agents}"
    task = resources["aws_datasync_task.sequencers"]
    assert "aws_datasync_location_smb.nas[0].arn" in task["source_location_arn"]
    agent = resources["aws_datasync_agent.nas"]
    assert agent["activation_key"] == "${var.datasync_agent.activation_key}"
    (lifecycle,) = agent["lifecycle"]
    assert lifecycle["ignore_changes"] == ["activation_key", "ip_address"]
