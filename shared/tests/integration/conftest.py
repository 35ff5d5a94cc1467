from collections.abc import AsyncIterator
from typing import Any

import pytest

from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import Telemetry, setup_telemetry


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("tests", set_global=False)


@pytest.fixture
def settings(bootstrapped: dict[str, Any], resource_prefix: str) -> ServiceSettings:
    return ServiceSettings(prefix=resource_prefix, environment="test", sqs_wait_time_s=1, sqs_visibility_timeout_s=5)


@pytest.fixture
async def runtime(settings: ServiceSettings, telemetry: Telemetry) -> AsyncIterator[ServiceRuntime]:
    async with ServiceRuntime(settings, "tests", telemetry=telemetry) as rt:
        yield rt
