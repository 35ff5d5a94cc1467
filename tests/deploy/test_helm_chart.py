"""The Helm chart rendered by Helm's own engine for every ci/ scenario, and the invariants every render keeps."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from deploy_support import CHART, NAMESPACE, PORTS, RELEASE, SCENARIOS, SERVICES, Render, Rendered, scenario_values

from seqferry_shared.resources import ResourceNames

UNSTABLE_SELECTOR_LABELS = ("helm.sh/chart", "app.kubernetes.io/version")


def pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """(owner name, pod spec) of every workload: Deployments and the bootstrap Job."""
    return [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in rendered.objects
        if o["kind"] in {"Deployment", "Job"}
    ]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def enabled_services(rendered: Rendered) -> list[str]:
    return [s for s in SERVICES if rendered.values[s]["enabled"]]


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest, render: Render) -> Rendered:
    return render(scenario_values(request.param))


# -- helm lint --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_lint_is_clean_in_strict_mode(helm: ModuleType, name: str) -> None:
    # GIVEN a scenario WHEN Helm lints the chart with it (warnings count as failures)
    report = helm.lint(str(CHART), scenario_values(name), strict=True, namespace=NAMESPACE)

    # THEN nothing above "info" is reported
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert findings == [], findings
    assert report["errors"] == []


def test_lint_reports_values_that_break_the_schema(helm: ModuleType) -> None:
    report = helm.lint(str(CHART), {"executor": {"backend": "rsync"}}, strict=True)
    assert any("executor/backend" in error for error in report["errors"]), report


# -- every scenario ---------------------------------------------------------------------------------------------


def test_one_deployment_service_and_account_per_enabled_service(scenario: Rendered) -> None:
    expected = {f"{RELEASE}-{s}" for s in enabled_services(scenario)}
    assert {d["metadata"]["name"] for d in scenario.of_kind("Deployment")} == expected
    assert {s["metadata"]["name"] for s in scenario.of_kind("Service")} == expected
    accounts = {a["metadata"]["name"] for a in scenario.of_kind("ServiceAccount")}
    assert expected <= accounts
    for deployment in scenario.of_kind("Deployment"):
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] in accounts


def test_containers_are_unprivileged_and_read_only(scenario: Rendered) -> None:
    for owner, spec in pod_specs(scenario):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, owner
        assert pod["runAsUser"] != 0, owner
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", owner
        assert spec["automountServiceAccountToken"] is False, owner
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, owner
            assert context["runAsUser"] != 0, owner
            assert context["readOnlyRootFilesystem"] is True, owner
            assert context["allowPrivilegeEscalation"] is False, owner
            assert context.get("privileged", False) is False, owner
            assert context["capabilities"]["drop"] == ["ALL"], owner
            assert "add" not in context["capabilities"], owner
            assert context["seccompProfile"]["type"] == "RuntimeDefault", owner
            # /tmp is the only writable scratch space and it is an emptyDir
            volumes = {v["name"]: v for v in spec["volumes"]}
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1, owner
            assert "emptyDir" in volumes[tmp[0]["name"]], owner


def test_probes_on_healthz_and_readyz(scenario: Rendered) -> None:
    for deployment in scenario.of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_ports_and_services_match_each_service(scenario: Rendered) -> None:
    for component in enabled_services(scenario):
        (container,) = scenario.deployment(component)["spec"]["template"]["spec"]["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": PORTS[component], "protocol": "TCP"}]
        assert env_of(container)["SEQFERRY_HTTP_PORT"]["value"] == str(PORTS[component])
        assert env_of(container)["OTEL_SERVICE_NAME"]["value"] == f"seqferry-{component}"
        service = scenario.named("Service", f"{RELEASE}-{component}")
        assert service["spec"]["ports"] == [
            {"name": "http", "port": PORTS[component], "targetPort": "http", "protocol": "TCP"}
        ]


def test_selectors_are_stable_and_select_exactly_one_workload(scenario: Rendered) -> None:
    deployments = scenario.of_kind("Deployment")
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert not set(selector) & set(UNSTABLE_SELECTOR_LABELS), selector
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    for service in scenario.of_kind("Service"):
        selector = service["spec"]["selector"]
        assert not set(selector) & set(UNSTABLE_SELECTOR_LABELS), selector
        selected = [d for d in deployments if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert [d["metadata"]["name"] for d in selected] == [service["metadata"]["name"]]
    for monitor in scenario.of_kind("ServiceMonitor"):
        assert not set(monitor["spec"]["selector"]["matchLabels"]) & set(UNSTABLE_SELECTOR_LABELS)


def test_nas_is_mounted_into_executor_and_simulator_only(scenario: Rendered) -> None:
    values = scenario.values
    nas_configured = bool(values["nas"]["existingClaim"] or values["nas"]["nfs"]["server"])
    for owner, spec in pod_specs(scenario):
        component = owner.removeprefix(f"{RELEASE}-")
        nas_volumes = [v for v in spec["volumes"] if v["name"] == "nas"]
        if component in {"executor", "simulator"} and nas_configured:
            (volume,) = nas_volumes
            if values["nas"]["existingClaim"]:
                assert volume["persistentVolumeClaim"] == {"claimName": values["nas"]["existingClaim"]}
            else:
                assert volume["nfs"] == {"server": values["nas"]["nfs"]["server"], "path": values["nas"]["nfs"]["path"]}
            (container,) = spec["containers"]
            (mount,) = [m for m in container["volumeMounts"] if m["name"] == "nas"]
            assert mount["mountPath"] == values["nas"]["mountPath"]
            assert mount["readOnly"] is (component == "executor" and values["executor"]["nasReadOnly"])
            assert env_of(container)["SEQFERRY_NAS_ROOT"]["value"] == values["nas"]["mountPath"]
        else:
            assert nas_volumes == [], owner
            for container in spec["containers"]:
                assert "SEQFERRY_NAS_ROOT" not in env_of(container), owner


def test_keda_objects_exist_only_for_autoscaled_consumers(scenario: Rendered) -> None:
    values = scenario.values
    autoscaled = {
        s for s in ("executor", "adhoc", "notifier") if values[s]["enabled"] and values[s]["autoscaling"]["enabled"]
    }
    scaled = {o["metadata"]["name"]: o for o in scenario.of_kind("ScaledObject")}
    assert set(scaled) == {f"{RELEASE}-{s}" for s in autoscaled}
    assert len(scenario.of_kind("TriggerAuthentication")) == len(autoscaled)
    names = ResourceNames.for_prefix(values["config"]["prefix"])
    queues = {
        "executor": names.executor_queue.name,
        "adhoc": names.adhoc_queue.name,
        "notifier": names.notifier_queue.name,
    }
    for component in autoscaled:
        spec = scaled[f"{RELEASE}-{component}"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"{RELEASE}-{component}"
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "aws-sqs-queue"
        assert trigger["metadata"]["queueURL"].endswith(queues[component])
        assert trigger["metadata"]["awsRegion"] == values["config"]["awsRegion"]
        # the ScaledObject owns the replica count
        assert "replicas" not in scenario.deployment(component)["spec"]
    for component in set(enabled_services(scenario)) - autoscaled:
        assert scenario.deployment(component)["spec"]["replicas"] == values[component]["replicaCount"]


def test_irsa_role_annotations(scenario: Rendered) -> None:
    for component in enabled_services(scenario):
        account_values = scenario.values[component]["serviceAccount"]
        account = scenario.named("ServiceAccount", f"{RELEASE}-{component}")
        annotations = account["metadata"].get("annotations", {})
        if account_values["roleArn"]:
            assert annotations["eks.amazonaws.com/role-arn"] == account_values["roleArn"]
        else:
            assert "eks.amazonaws.com/role-arn" not in annotations


def test_api_token_comes_from_a_secret(scenario: Rendered) -> None:
    token = scenario.values["apiToken"]
    secret_name = token["existingSecret"] or f"{RELEASE}-api-token"
    key = token["existingSecretKey"] if token["existingSecret"] else "api-token"
    secrets = {s["metadata"]["name"] for s in scenario.of_kind("Secret")}
    assert (secret_name in secrets) is (not token["existingSecret"])
    for deployment in scenario.of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        reference = env_of(container)["SEQFERRY_API_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": secret_name, "key": key}


def test_shared_settings_come_from_the_config_map(scenario: Rendered) -> None:
    config_map = scenario.named("ConfigMap", f"{RELEASE}-config")
    data = config_map["data"]
    assert data["SEQFERRY_PREFIX"] == scenario.values["config"]["prefix"]
    assert data["SEQFERRY_ENVIRONMENT"] == scenario.values["config"]["environment"]
    assert data["SEQFERRY_HTTP_HOST"] == "0.0.0.0"
    assert data["AWS_REGION"] == scenario.values["config"]["awsRegion"]
    assert all(isinstance(v, str) for v in data.values())
    for deployment in scenario.of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"configMapRef": {"name": f"{RELEASE}-config"}} in container["envFrom"]
        assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_images_are_tagged(scenario: Rendered) -> None:
    for owner, spec in pod_specs(scenario):
        for container in spec["containers"]:
            repository, _, tag = container["image"].rpartition(":")
            assert repository, owner
            assert "/" not in tag, owner
            assert tag, owner
            assert tag != "latest", owner


def test_names_fit_kubernetes_limits(scenario: Rendered) -> None:
    for obj in scenario.objects:
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        assert obj["metadata"]["namespace"] == NAMESPACE


# -- particular scenarios ---------------------------------------------------------------------------------------


def test_datasync_backend_passes_its_tasks_and_mounts_no_nas(render: Render) -> None:
    rendered = render(scenario_values("datasync-backend-values.yaml"))
    (container,) = rendered.deployment("executor")["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["SEQFERRY_BACKEND"]["value"] == "datasync"
    assert env["SEQFERRY_DATASYNC_TASK_ARNS"]["value"] == (
        "sequencers=arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"
    )
    assert all(v["name"] != "nas" for _, spec in pod_specs(rendered) for v in spec["volumes"])


def test_optional_features_are_off_by_default(render: Render) -> None:
    # GIVEN only what a production install must say (the NAS and the roles)
    rendered = render(scenario_values("minimal-values.yaml"))

    # THEN no optional object is rendered
    for kind in ("ScaledObject", "TriggerAuthentication", "ServiceMonitor", "Ingress", "Job"):
        assert rendered.of_kind(kind) == [], kind
    assert "simulator" not in enabled_services(rendered)
    assert rendered.named("ConfigMap", f"{RELEASE}-config")["data"]["SEQFERRY_ENVIRONMENT"] == "prod"


def test_generated_token_is_long_enough_for_prod(render: Render) -> None:
    rendered = render(scenario_values("minimal-values.yaml"))
    secret = rendered.named("Secret", f"{RELEASE}-api-token")
    assert len(secret["data"]["api-token"]) >= 40  # base64 of a 40-character random token


def test_bootstrap_hook_runs_before_the_services(render: Render) -> None:
    rendered = render(scenario_values("emulator-values.yaml"))
    (job,) = rendered.of_kind("Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    account = rendered.named("ServiceAccount", f"{RELEASE}-bootstrap")
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["seqferry-bootstrap"]
    assert container["image"].startswith("seqferry-executor:")
    env = env_of(container)
    assert env["SEQFERRY_PREFIX"]["value"] == "seqferry"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://localstack.localstack:4566"


def test_executor_with_a_state_claim_is_replaced_not_rolled(render: Render) -> None:
    rendered = render(scenario_values("emulator-values.yaml"))
    executor = rendered.deployment("executor")
    assert executor["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in executor["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"] == {"claimName": "seqferry-executor-state"}
    assert "strategy" not in rendered.deployment("notifier")["spec"]


def test_ingress_routes_to_the_dashboard(render: Render) -> None:
    rendered = render(scenario_values("emulator-values.yaml"))
    (ingress,) = rendered.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": f"{RELEASE}-notifier", "port": {"name": "http"}}


def test_defaults_alone_refuse_to_render_without_a_nas(helm: ModuleType, render: Render) -> None:
    # The local backend reads the NAS: rendering without one must fail loudly rather than deploy an idle executor.
    with pytest.raises(helm.HelmRenderError, match=r"nas\.existingClaim"):
        render({})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nas": {"existingClaim": "nas"}, "executor": {"backend": "rsync"}}, "executor/backend"),
        ({"executor": {"backend": "datasync"}}, "datasyncTaskArns"),
        ({"nas": {"existingClaim": "nas"}, "replicas": 2}, "replicas"),
        ({"nas": {"existingClaim": "nas"}, "config": {"environment": "production"}}, "config/environment"),
        ({"nas": {"existingClaim": "nas"}, "scheduler": {"port": 80}}, "scheduler/port"),
    ],
)
def test_helm_enforces_the_values_schema(
    helm: ModuleType, render: Render, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=message):
        render(values)


def test_notes_tell_how_to_reach_the_dashboard_and_token(render: Render) -> None:
    notes = render(scenario_values("minimal-values.yaml")).notes
    assert f"port-forward svc/{RELEASE}-notifier" in notes
    assert f"get secret {RELEASE}-api-token" in notes
