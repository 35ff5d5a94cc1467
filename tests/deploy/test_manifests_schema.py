"""Every rendered scenario is valid Kubernetes for every version EKS runs, and valid KEDA / Prometheus Operator.

Built-in kinds go through ``kubernetes-validate`` in strict mode (its ``--strict``: a field the API does not know is
an error, as ``kubectl --validate=strict`` reports it) for each Kubernetes version in ``EKS_VERSIONS``. Operator
kinds are checked against the vendored CRDs' ``openAPIV3Schema`` (``crds/SOURCES.md``), made strict the same way.

EKS versions on 2026-11-26 (the EKS release calendar): 1.31 reaches the end of extended support that day, 1.32
and 1.33 are in extended support, 1.34 (standard support until 2026-12-02), 1.35 and 1.36 in standard support, and
1.37, the newest upstream minor, whose schemas the pinned kubernetes-validate ships as its newest. A version
missing from kubernetes-validate fails the test instead of being skipped.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_support import CHART, SCENARIOS, Render, Rendered, scenario_values

EKS_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")
CRDS = Path(__file__).parent / "crds"
CRD_FILES = (
    CRDS / "keda" / "keda.sh_scaledobjects.yaml",
    CRDS / "keda" / "keda.sh_triggerauthentications.yaml",
    CRDS / "prometheus-operator" / "monitoring.coreos.com_servicemonitors.yaml",
)


def strict(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema where objects accept only declared fields (unless the schema keeps unknown ones)."""
    if isinstance(schema, dict):
        result = {key: strict(value) for key, value in schema.items()}
        declared = "properties" in result
        open_ended = result.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in result
        if declared and not open_ended:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def load_crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema of that served version."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in CRD_FILES:
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's business; the CRD schema declares it as a bare object
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


CRD_SCHEMAS = load_crd_schemas()


def crd_errors(obj: dict[str, Any]) -> list[str]:
    schema = CRD_SCHEMAS[(obj["apiVersion"], obj["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def kubernetes_errors(obj: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def errors_of(rendered: Rendered, version: str) -> list[str]:
    found = []
    for obj in rendered.objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if (obj["apiVersion"], obj["kind"]) in CRD_SCHEMAS:
            found += [f"{name}: {e}" for e in crd_errors(obj)]
        else:
            found += [f"{name} (Kubernetes {version}): {e}" for e in kubernetes_errors(obj, version)]
    return found


def test_kubernetes_validate_ships_every_eks_version() -> None:
    shipped = {kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()}
    assert set(EKS_VERSIONS) <= shipped, sorted(shipped)


def test_the_vendored_crds_cover_every_operator_kind_the_chart_renders() -> None:
    kinds = {kind for _, kind in CRD_SCHEMAS}
    assert kinds == {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"}
    for path in CRD_FILES:
        assert (path.parent / "LICENSE").is_file(), path


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("version", EKS_VERSIONS)
def test_scenario_is_valid_for_the_kubernetes_versions_of_eks(render: Render, name: str, version: str) -> None:
    rendered = render(scenario_values(name))
    assert errors_of(rendered, version) == []


def test_every_operator_resource_is_rendered_by_some_scenario(render: Render) -> None:
    kinds = {obj["kind"] for name in SCENARIOS for obj in render(scenario_values(name)).objects}
    assert {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"} <= kinds


def test_the_checks_reject_what_the_api_server_would(render: Render) -> None:
    # GIVEN a valid render, then copies with a misspelt field, a wrong type and an unknown operator field
    rendered = render(scenario_values("keda-enabled-values.yaml"))
    deployment = copy.deepcopy(next(o for o in rendered.objects if o["kind"] == "Deployment"))
    deployment["spec"]["replica"] = 2
    budget = copy.deepcopy(next(o for o in rendered.objects if o["kind"] == "PodDisruptionBudget"))
    budget["spec"]["maxUnavailable"] = [1]
    scaled = copy.deepcopy(next(o for o in rendered.objects if o["kind"] == "ScaledObject"))
    scaled["spec"]["pollingIntervall"] = 30
    trigger = copy.deepcopy(scaled)
    trigger["spec"]["triggers"][0]["authenticationRef"]["nam"] = "x"

    # THEN each is reported
    assert errors_of(rendered, "1.35") == []
    assert kubernetes_errors(deployment, "1.35")
    assert kubernetes_errors(budget, "1.35")
    assert crd_errors(scaled)
    assert crd_errors(trigger)
    # AND an apiVersion the cluster does not serve is reported, not skipped
    old = copy.deepcopy(budget)
    old["apiVersion"] = "policy/v1beta1"
    assert kubernetes_errors(old, "1.35")


def test_chart_declares_the_oldest_version_it_is_checked_against() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["kubeVersion"] == f">={EKS_VERSIONS[0]}.0-0"
