"""The Helm chart rendered by Helm's own engine for every ci/ scenario, and the invariants every render keeps."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from types import ModuleType
from typing import Any

import pytest
from deploy_support import (
    CHART,
    NAMESPACE,
    PORTS,
    RELEASE,
    SCENARIOS,
    SERVICES,
    WORKLOAD_KINDS,
    Render,
    Rendered,
    deep_merge,
    load_yaml,
    scenario_values,
)

from seqferry_shared.resources import ResourceNames

UNSTABLE_SELECTOR_LABELS = ("helm.sh/chart", "app.kubernetes.io/version")


def pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """(owner name, pod spec) of every pod the chart makes: workloads, the bootstrap Job and the test pods."""
    specs = [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in rendered.objects
        if o["kind"] in {*WORKLOAD_KINDS, "Job"}
    ]
    return specs + [(o["metadata"]["name"], o["spec"]) for o in rendered.of_kind("Pod")]


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
    assert sorted(d["metadata"]["name"] for d in scenario.workloads()) == sorted(expected)
    assert {s["metadata"]["name"] for s in scenario.of_kind("Service")} == expected
    accounts = {a["metadata"]["name"] for a in scenario.of_kind("ServiceAccount")}
    assert expected <= accounts
    for deployment in scenario.workloads():
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
    for deployment in scenario.workloads():
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
    deployments = scenario.workloads()
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
    for budget in scenario.of_kind("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert not set(selector) & set(UNSTABLE_SELECTOR_LABELS)
        selected = [w for w in deployments if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert [w["metadata"]["name"] for w in selected] == [budget["metadata"]["name"]]


def test_nas_is_mounted_into_the_local_executor_and_the_simulator_only(scenario: Rendered) -> None:
    values = scenario.values
    nas_configured = bool(values["nas"]["existingClaim"] or values["nas"]["nfs"]["server"])
    readers = {"simulator"} | ({"executor"} if values["executor"]["backend"] == "local" else set())
    for owner, spec in pod_specs(scenario):
        component = owner.removeprefix(f"{RELEASE}-")
        nas_volumes = [v for v in spec.get("volumes", []) if v["name"] == "nas"]
        if component in readers and nas_configured:
            (volume,) = nas_volumes
            # read-only at the volume level for the executor: kubelet never changes ownership on the lab share
            read_only = component == "executor" and values["executor"]["nasReadOnly"]
            if values["nas"]["existingClaim"]:
                claim = {"claimName": values["nas"]["existingClaim"], "readOnly": read_only}
                assert volume["persistentVolumeClaim"] == claim
            else:
                nfs = values["nas"]["nfs"]
                assert volume["nfs"] == {"server": nfs["server"], "path": nfs["path"], "readOnly": read_only}
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
        # the ScaledObject owns the replica count of a Deployment
        assert "replicas" not in scenario.deployment(component)["spec"]
        assert spec["scaleTargetRef"]["kind"] == scenario.deployment(component)["kind"] == "Deployment"
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
    for deployment in scenario.workloads():
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
    for deployment in scenario.workloads():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"configMapRef": {"name": f"{RELEASE}-config"}} in container["envFrom"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert {"checksum/config", "checksum/api-token"} <= set(annotations)


def test_images_are_pinned_by_tag_or_digest(scenario: Rendered) -> None:
    for owner, spec in pod_specs(scenario):
        for container in spec["containers"]:
            image = container["image"]
            if "@" in image:
                repository, _, digest = image.partition("@")
                assert repository, owner
                assert digest.startswith("sha256:"), owner
                assert len(digest) == 71, owner
                continue
            repository, _, tag = image.rpartition(":")
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


def test_every_render_of_the_same_values_is_identical(render: Render) -> None:
    # GitOps tools (Argo CD, Flux) render again and again: no generated token, no lookup, nothing that drifts.
    for name in SCENARIOS:
        assert render(scenario_values(name)).objects == render(scenario_values(name)).objects, name
    with_value = deep_merge(scenario_values("minimal-values.yaml"), {"apiToken": {"existingSecret": ""}})
    with_value["apiToken"]["value"] = "a-token-of-enough-length"
    assert render(with_value).objects == render(with_value).objects


def test_the_token_is_required_and_never_generated(helm: ModuleType, render: Render) -> None:
    values = deep_merge(scenario_values("minimal-values.yaml"), {"apiToken": {"existingSecret": ""}})
    with pytest.raises(helm.HelmRenderError, match=r"apiToken\.existingSecret"):
        render(values)
    values["apiToken"]["value"] = "too-short"
    with pytest.raises(helm.HelmRenderError, match="at least 16 characters"):
        render(values)


def test_a_changed_token_rolls_every_pod(render: Render) -> None:
    # GIVEN the token in the chart's own Secret
    values = deep_merge(scenario_values("minimal-values.yaml"), {"apiToken": {"existingSecret": ""}})
    values["apiToken"]["value"] = "first-token-0123456789"
    before = render(values)
    values["apiToken"]["value"] = "second-token-0123456789"

    # WHEN it changes
    after = render(values)

    # THEN every pod template changes (a rollout), and only through the token's checksum
    def annotations(rendered: Rendered) -> dict[str, dict[str, str]]:
        return {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["annotations"] for w in rendered.workloads()}

    old, new = annotations(before), annotations(after)
    assert old.keys() == new.keys()
    for name in old:
        assert old[name]["checksum/api-token"] != new[name]["checksum/api-token"], name
        assert old[name]["checksum/config"] == new[name]["checksum/config"], name
    # AND an existing Secret's rotation is announced by pointing at another Secret (or key)
    existing = render(scenario_values("datasync-backend-values.yaml"))
    moved = deep_merge(scenario_values("datasync-backend-values.yaml"), {"apiToken": {"existingSecret": "token-v2"}})
    assert annotations(existing) != annotations(render(moved))


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


def test_local_executor_is_one_stateful_pod_with_its_own_claim(render: Render) -> None:
    # GIVEN the local backend (its pass and change index live in one process)
    rendered = render(scenario_values("production-values.yaml"))

    # THEN the executor is a StatefulSet of one replica whose change index is on a claim of its own
    executor = rendered.deployment("executor")
    assert executor["kind"] == "StatefulSet"
    assert executor["spec"]["replicas"] == 1
    assert executor["spec"]["serviceName"] == f"{RELEASE}-executor"
    (template,) = executor["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "state"
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert template["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert template["spec"]["storageClassName"] == "gp3"
    (container,) = executor["spec"]["template"]["spec"]["containers"]
    assert {"name": "state", "mountPath": "/var/lib/seqferry"} in container["volumeMounts"]
    assert all(v["name"] != "state" for v in executor["spec"]["template"]["spec"]["volumes"])
    assert env_of(container)["SEQFERRY_LOCAL__INDEX_PATH"]["value"].startswith("/var/lib/seqferry/")
    # AND every other service stays a Deployment
    assert {w["kind"] for w in rendered.workloads() if w is not executor} == {"Deployment"}


@pytest.mark.parametrize(
    "override",
    [{"executor": {"replicaCount": 2}}, {"executor": {"autoscaling": {"enabled": True}}}],
)
def test_local_executor_refuses_more_than_one_replica(
    helm: ModuleType, render: Render, override: dict[str, Any]
) -> None:
    # A second replica would follow the first one's pass by running it again: the chart refuses, saying why.
    values = deep_merge(scenario_values("minimal-values.yaml"), override)
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError), match=r"replica|executor"):
        render(values)


def test_datasync_executor_is_a_stateless_deployment_that_scales(render: Render) -> None:
    rendered = render(scenario_values("keda-enabled-values.yaml"))
    executor = rendered.deployment("executor")
    assert executor["kind"] == "Deployment"
    assert "volumeClaimTemplates" not in executor["spec"]
    volumes = {v["name"]: v for v in executor["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["state"]
    assert rendered.named("ScaledObject", f"{RELEASE}-executor")["spec"]["maxReplicaCount"] == 4


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


# -- availability, placement, network, chart tests ----------------------------------------------------------------


def test_one_disruption_budget_per_service_that_never_blocks_a_drain(scenario: Rendered) -> None:
    budgets = {b["metadata"]["name"]: b["spec"] for b in scenario.of_kind("PodDisruptionBudget")}
    assert set(budgets) == {f"{RELEASE}-{s}" for s in enabled_services(scenario)}
    for spec in budgets.values():
        assert spec["maxUnavailable"] == scenario.values["podDisruptionBudget"]["maxUnavailable"]
        assert "minAvailable" not in spec
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pods_spread_over_zones_and_nodes(scenario: Rendered) -> None:
    spread = scenario.values["topologySpread"]
    for workload in scenario.workloads():
        constraints = workload["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in constraints] == spread["topologyKeys"]
        for constraint in constraints:
            assert constraint["labelSelector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]
            assert constraint["whenUnsatisfiable"] == spread["whenUnsatisfiable"]


def policies(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in rendered.of_kind("NetworkPolicy")}


def selects(spec: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(spec["podSelector"]["matchLabels"].items() <= labels.items())


def test_every_pod_is_denied_by_default_then_given_dns_and_aws(scenario: Rendered) -> None:
    found = policies(scenario)
    deny = found[f"{RELEASE}-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    # the default deny and the common egress select every pod the chart makes
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in scenario.workloads()]
    pods += [p["metadata"]["labels"] for p in scenario.of_kind("Pod")]
    egress = found[f"{RELEASE}-egress"]
    for labels in pods:
        assert selects(deny, labels)
        assert selects(egress, labels)
    dns, aws, *rest = egress["egress"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert aws["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert [peer["ipBlock"]["cidr"] for peer in aws["to"]] == scenario.values["networkPolicy"]["awsCidrs"]
    otlp = scenario.values["telemetry"]["otlpEndpoint"]
    assert any(rule["ports"][0]["port"] == 4318 for rule in rest) is bool(otlp)


def test_each_service_is_reachable_only_as_configured(scenario: Rendered) -> None:
    found = policies(scenario)
    network = scenario.values["networkPolicy"]
    for component in enabled_services(scenario):
        spec = found[f"{RELEASE}-{component}"]
        sources = [rule["from"] for rule in spec["ingress"]]
        # the chart's own test pods, on the HTTP port only
        assert sources[0] == [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "seqferry",
                        "app.kubernetes.io/instance": RELEASE,
                        "app.kubernetes.io/component": "test",
                    }
                }
            }
        ]
        assert all(rule["ports"] == [{"port": "http", "protocol": "TCP"}] for rule in spec["ingress"])
        expected = network["ingressFrom"][component]
        assert (expected in sources) is bool(expected), component
        if scenario.values["serviceMonitor"]["enabled"]:
            assert (network["metricsFrom"] or [{"namespaceSelector": {}}]) in sources
    # the dashboard is open (to every namespace unless narrowed); the other services to nobody by default
    defaults = render_defaults_network()
    assert defaults["notifier"] == [{"namespaceSelector": {}}]
    assert all(defaults[s] == [] for s in ("scheduler", "executor", "adhoc", "simulator"))


def render_defaults_network() -> dict[str, Any]:
    values = load_yaml(CHART / "values.yaml")
    ingress: dict[str, Any] = values["networkPolicy"]["ingressFrom"]
    return ingress


def test_nfs_egress_only_for_pods_that_mount_the_nas(render: Render) -> None:
    rendered = render(scenario_values("production-values.yaml"))
    found = policies(rendered)
    executor = found[f"{RELEASE}-executor"]
    assert executor["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = executor["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "10.20.0.15/32"}}]
    assert {(p["port"], p["protocol"]) for p in rule["ports"]} == {
        (2049, "TCP"),
        (2049, "UDP"),
        (111, "TCP"),
        (111, "UDP"),
    }
    for component in ("scheduler", "adhoc", "notifier"):
        assert "egress" not in found[f"{RELEASE}-{component}"], component


def test_helm_test_checks_readyz_of_every_service(scenario: Rendered) -> None:
    pods = {p["metadata"]["name"]: p for p in scenario.of_kind("Pod")}
    assert set(pods) == {f"{RELEASE}-test-{s}" for s in enabled_services(scenario)}
    for component in enabled_services(scenario):
        pod = pods[f"{RELEASE}-test-{component}"]
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
        (container,) = pod["spec"]["containers"]
        url = f"http://{RELEASE}-{component}.{NAMESPACE}.svc:{PORTS[component]}/readyz"
        assert container["command"][-2] == url
        assert (
            container["image"] == scenario.deployment(component)["spec"]["template"]["spec"]["containers"][0]["image"]
        )
    # the test pods may reach the services (and only them)
    test_policy = policies(scenario)[f"{RELEASE}-test"]
    (rule,) = test_policy["egress"]
    assert {p["port"] for p in rule["ports"]} == {PORTS[s] for s in enabled_services(scenario)}


def test_the_readyz_check_fails_when_a_service_is_not_ready(render: Render) -> None:
    # GIVEN the check a test pod runs, against a local server answering 503 and then one answering 200
    rendered = render(scenario_values("minimal-values.yaml"))
    (container,) = rendered.named("Pod", f"{RELEASE}-test-notifier")["spec"]["containers"]
    script = container["command"][2]

    def serve(status: int) -> tuple[http.server.HTTPServer, str]:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b'{"ready": false}' if status != 200 else b'{"ready": true}')

            def log_message(self, *args: Any) -> None:
                return

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/readyz"

    for status, expected in ((503, 1), (200, 0)):
        server, url = serve(status)
        try:
            result = subprocess.run(
                [sys.executable, "-c", script, url, "2"], capture_output=True, text=True, timeout=30, check=False
            )
        finally:
            server.shutdown()
            server.server_close()
        assert result.returncode == expected, (status, result.stdout, result.stderr)


def test_images_can_be_pinned_by_digest(render: Render) -> None:
    rendered = render(scenario_values("production-values.yaml"))
    (container,) = rendered.deployment("scheduler")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/seqferry-scheduler@sha256:" + "1" * 64)


def test_datasync_executor_never_mounts_the_nas(render: Render) -> None:
    # GIVEN a NAS configured for the simulator, and the datasync backend
    values = deep_merge(scenario_values("datasync-backend-values.yaml"), {"nas": {"existingClaim": "test-share"}})
    values["simulator"] = {"enabled": True}

    rendered = render(values)

    # THEN only the simulator mounts it: DataSync's agent reads the share
    assert all(v["name"] != "nas" for v in rendered.deployment("executor")["spec"]["template"]["spec"]["volumes"])
    assert any(v["name"] == "nas" for v in rendered.deployment("simulator")["spec"]["template"]["spec"]["volumes"])


def test_datasync_endpoint_reaches_executor_and_notifier(render: Render) -> None:
    values = deep_merge(
        scenario_values("datasync-backend-values.yaml"),
        {"config": {"datasyncEndpointUrl": "https://datasync.eu-west-1.vpce.example"}},
    )
    data = render(values).named("ConfigMap", f"{RELEASE}-config")["data"]
    assert data["SEQFERRY_DATASYNC_ENDPOINT_URL"] == "https://datasync.eu-west-1.vpce.example"
