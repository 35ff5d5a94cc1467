"""values.yaml, the ci/ scenarios and values.schema.json agree; every value is documented (no Helm needed)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_support import CHART, REPO, SCENARIOS, deep_merge, load_module, load_yaml, scenario_values

PARAMS = load_module(REPO / "deploy" / "helm" / "params.py", "seqferry_chart_params")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def defaults() -> dict[str, Any]:
    values = load_yaml(CHART / "values.yaml")
    assert isinstance(values, dict)
    return values


def errors(validator: jsonschema.Draft7Validator, values: dict[str, Any]) -> list[str]:
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


def test_default_values_are_valid(validator: jsonschema.Draft7Validator, defaults: dict[str, Any]) -> None:
    assert errors(validator, defaults) == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenarios_are_valid(validator: jsonschema.Draft7Validator, defaults: dict[str, Any], name: str) -> None:
    assert errors(validator, deep_merge(defaults, scenario_values(name))) == []


def test_there_are_scenarios_for_the_main_setups() -> None:
    assert {
        "minimal-values.yaml",
        "keda-enabled-values.yaml",
        "datasync-backend-values.yaml",
        "production-values.yaml",
    } <= set(SCENARIOS)


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"config": {"environment": "staging"}}, "/config/environment"),
        ({"config": {"prefix": "Seq_Ferry"}}, "/config/prefix"),
        ({"config": {"awsAccountId": "12345"}}, "/config/awsAccountId"),
        ({"config": {"awsRetryMode": "legacy"}}, "/config/awsRetryMode"),
        ({"config": {"sqsWaitTimeSeconds": 25}}, "/config/sqsWaitTimeSeconds"),
        ({"executor": {"backend": "rsync"}}, "/executor/backend"),
        ({"executor": {"backend": "datasync"}}, "/executor/datasyncTaskArns"),
        ({"executor": {"backend": "datasync", "datasyncTaskArns": {"sequencers": "arn:aws:s3:::bucket"}}}, "/executor"),
        ({"executor": {"local": {"checksum": "md5"}}}, "/executor/local/checksum"),
        ({"executor": {"serviceAccount": {"roleArn": "seqferry-executor"}}}, "/executor/serviceAccount/roleArn"),
        ({"scheduler": {"port": 443}}, "/scheduler/port"),
        ({"scheduler": {"replicaCount": "one"}}, "/scheduler/replicaCount"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"keda": {"identityOwner": "pod"}}, "/keda/identityOwner"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"notifier": {"extraEnv": [{"value": "x"}]}}, "/notifier/extraEnv"),
        ({"replicaCount": 3}, "/"),
        ({"executor": {"replicaCount": 2}}, "/executor/replicaCount"),
        ({"executor": {"autoscaling": {"enabled": True}}}, "/executor/autoscaling/enabled"),
        ({"scheduler": {"image": {"digest": "sha256:abc"}}}, "/scheduler/image/digest"),
        ({"podDisruptionBudget": {"maxUnavailable": 0}}, "/podDisruptionBudget/maxUnavailable"),
        ({"topologySpread": {"whenUnsatisfiable": "Never"}}, "/topologySpread/whenUnsatisfiable"),
        ({"networkPolicy": {"awsCidrs": []}}, "/networkPolicy/awsCidrs"),
        ({"networkPolicy": {"ingressFrom": {"notifier": [{"everyone": True}]}}}, "/networkPolicy/ingressFrom/notifier"),
        ({"nas": {"nfsCidrs": ["nas.lab"]}}, "/nas/nfsCidrs"),
    ],
)
def test_schema_rejects_bad_values(
    validator: jsonschema.Draft7Validator, defaults: dict[str, Any], override: dict[str, Any], path: str
) -> None:
    found = errors(validator, deep_merge(defaults, override))
    assert any(error.startswith(path) for error in found), found


def test_schema_requires_the_main_sections(validator: jsonschema.Draft7Validator, defaults: dict[str, Any]) -> None:
    for section in ("config", "executor", "nas", "apiToken"):
        values = {k: v for k, v in defaults.items() if k != section}
        assert any(section in e for e in errors(validator, values)), section


def test_datasync_executor_may_scale(validator: jsonschema.Draft7Validator, defaults: dict[str, Any]) -> None:
    arns = {"sequencers": "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"}
    values = deep_merge(
        defaults,
        {"executor": {"backend": "datasync", "datasyncTaskArns": arns, "replicaCount": 3}},
    )
    assert errors(validator, values) == []


def test_datasync_without_the_executor_needs_no_task(
    validator: jsonschema.Draft7Validator, defaults: dict[str, Any]
) -> None:
    values = deep_merge(defaults, {"executor": {"enabled": False, "backend": "datasync"}})
    assert errors(validator, values) == []


def test_every_value_has_a_param_comment() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    assert PARAMS.problems(load_yaml(CHART / "values.yaml"), PARAMS.parse_params(text)) == []


def test_param_check_finds_undocumented_and_stale_values() -> None:
    # GIVEN a value without a comment and a comment without a value
    text = "## @section S\n## @param a.b Documented\na:\n  b: 1\n  c: 2\n## @param gone Stale\n"

    # WHEN checked
    found = PARAMS.problems(load_yaml_text(text), PARAMS.parse_params(text))

    # THEN both are reported
    assert found == ["@param gone names no value in values.yaml", "a.c has no @param comment"]


def test_readme_values_table_is_current() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    values = load_yaml(CHART / "values.yaml")
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    expected = PARAMS.readme_with_table(readme, PARAMS.render_table(values, PARAMS.parse_params(text)))
    assert readme == expected, "run: python deploy/helm/params.py deploy/helm/seqferry --write"


def test_chart_metadata() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "seqferry"
    assert chart["type"] == "application"
    major, minor, patch = (int(part) for part in chart["version"].split("."))
    assert (major, minor, patch) >= (0, 1, 0)


def load_yaml_text(text: str) -> dict[str, Any]:
    value = yaml.safe_load(text)
    assert isinstance(value, dict)
    return value
