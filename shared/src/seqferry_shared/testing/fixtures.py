"""pytest fixtures shared by every package's tests.

- ``moto_server`` (session): moto's HTTP server on a free port; ``AWS_ENDPOINT_URL`` and dummy credentials are
  set for the whole session so boto3, aiobotocore and subprocesses all reach it.
- ``resource_prefix``: a fresh prefix per test, so tests never see each other's queues, buckets or tables.
- ``settings_env``: environment variables a service subprocess needs to reach this test's resources.
- ``bootstrapped``: runs bootstrap for the test's prefix and returns its result.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seqferry_shared.bootstrap import bootstrap
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.testing.motoserver import MotoServer, start_moto_server


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    server = start_moto_server(log_path=log)
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)


@pytest.fixture
def resource_prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def settings_env(moto_server: MotoServer, resource_prefix: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SEQFERRY_PREFIX": resource_prefix,
        "SEQFERRY_ENVIRONMENT": "test",
        "SEQFERRY_SQS_WAIT_TIME_S": "1",
    }


@pytest.fixture
def bootstrapped(moto_server: MotoServer, resource_prefix: str) -> dict[str, Any]:
    return bootstrap(ServiceSettings(prefix=resource_prefix, environment="test"))
