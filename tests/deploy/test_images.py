"""deploy/docker/images.py (`make images`) and the compose overrides for machines without a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import REPO, load_module

IMAGES = load_module(REPO / "deploy" / "docker" / "images.py", "seqferry_images_static")


class ComposeLoader(yaml.SafeLoader):
    """Compose's merge tags (!reset, !override) read as the value they carry."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(_tag, _tagged)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=ComposeLoader)


def test_the_official_base_is_the_dockerfiles_default() -> None:
    assert IMAGES.dockerfile_default_base() == "python:3.11.14-slim-bookworm"


def test_the_local_base_is_rebuilt_only_when_its_inputs_change(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    tag = IMAGES.BOOKWORM.tag(bundle)
    # same inputs, same tag (the cached image is reused)
    assert IMAGES.BOOKWORM.tag(bundle) == tag
    assert tag.startswith("seqferry-base:bookworm-")
    # another CA bundle, another suite or another package list: another image
    bundle.write_text(bundle.read_text() + "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n")
    assert IMAGES.BOOKWORM.tag(bundle) != tag
    assert IMAGES.TRIXIE.tag(bundle) != IMAGES.BOOKWORM.tag(bundle)
    assert IMAGES.DebianBase("bookworm", ("python3",)).tag(bundle) != IMAGES.BOOKWORM.tag(bundle)


def test_the_local_base_carries_the_ca_bundle_and_points_pip_at_it(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    argv = IMAGES.BOOKWORM.mmdebstrap_args(bundle, tmp_path / "rootfs.tar")
    assert "--variant=minbase" in argv
    assert "--include=python3,python3-venv,python-is-python3,ca-certificates" in argv
    assert f"--customize-hook=upload {bundle} {IMAGES.CA_BUNDLE_IN_IMAGE}" in argv
    assert argv[-2:] == ["bookworm", str(tmp_path / "rootfs.tar")]


def test_images_are_built_on_the_chosen_base() -> None:
    builds = IMAGES.planned_builds("base:1", "dev", IMAGES.SERVICES, "trixie:1")
    by_image = {b.image: b for b in builds}
    for service in IMAGES.SERVICES:
        assert by_image[f"seqferry-{service}:dev"].args == {"PYTHON_IMAGE": "base:1", "SERVICE": service}
    assert by_image[IMAGES.emulator_image()].args == {"PYTHON_IMAGE": "base:1"}
    assert by_image[IMAGES.localstack_image()].args == {"BASE_IMAGE": "trixie:1"}
    assert IMAGES.localstack_image() not in {b.image for b in IMAGES.planned_builds("b", "dev", ("executor",), None)}


def test_overrides_name_the_images_make_images_builds() -> None:
    no_registry = load_yaml(REPO / "deploy" / "compose" / "no-registry.yaml")["services"]
    local = load_yaml(REPO / "deploy" / "compose" / "localstack-local.yaml")["services"]
    assert no_registry["localstack"]["image"] == IMAGES.emulator_image()
    assert local["dynamodb"]["image"] == IMAGES.emulator_image()
    assert local["localstack"]["image"] == IMAGES.localstack_image()
    assert no_registry["otel-collector"]["image"] == "seqferry-executor:dev"
    for service in (no_registry["localstack"], local["localstack"], local["dynamodb"]):
        assert service["pull_policy"] == "never"


@pytest.mark.parametrize("service", ["bootstrap", "notifier", "scheduler", "executor", "adhoc", "simulator"])
def test_localstack_local_sends_dynamodb_to_moto(service: str) -> None:
    local = load_yaml(REPO / "deploy" / "compose" / "localstack-local.yaml")["services"]
    assert local[service]["environment"] == {"AWS_ENDPOINT_URL_DYNAMODB": "http://dynamodb:4566"}
    assert local[service]["depends_on"] == {"dynamodb": {"condition": "service_healthy"}}
