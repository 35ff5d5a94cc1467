"""Scheduler integration fixtures: a queue subscribed to the test bus, telemetry kept out of the global provider."""

from __future__ import annotations

from typing import Any

import pytest

from seqferry_shared.telemetry import Telemetry, setup_telemetry
from seqferry_shared.testing.bustap import BusTap


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("scheduler-tests", set_global=False)


@pytest.fixture
def tap(bootstrapped: dict[str, Any], resource_prefix: str) -> BusTap:
    return BusTap(resource_prefix, ["seqferry.scheduler"])
