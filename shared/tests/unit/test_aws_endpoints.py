"""Endpoint resolution: one emulator for everything, or a per-service variable sending one service elsewhere."""

from __future__ import annotations

import pytest

from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.settings import ServiceSettings, service_endpoint_variable


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    for variable in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_EVENTBRIDGE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localstack:4566")
    return ServiceSettings()


def test_variable_names_follow_the_sdk_rule() -> None:
    assert service_endpoint_variable("dynamodb") == "AWS_ENDPOINT_URL_DYNAMODB"
    # the client is "events", its service id "EventBridge"
    assert service_endpoint_variable("events") == "AWS_ENDPOINT_URL_EVENTBRIDGE"


def test_every_service_uses_the_one_endpoint_by_default(emulator: ServiceSettings) -> None:
    for service in ("s3", "sqs", "sns", "events", "dynamodb", "sts", "kms"):
        assert emulator.endpoint_url_for(service) == "http://localstack:4566"


def test_a_per_service_variable_sends_that_service_elsewhere(
    emulator: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DynamoDB routed to moto while LocalStack serves the rest
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://moto:4566")
    # THEN only DynamoDB clients go there, async and sync alike
    assert emulator.endpoint_url_for("dynamodb") == "http://moto:4566"
    assert emulator.endpoint_url_for("s3") == "http://localstack:4566"
    assert sync_client("dynamodb", emulator).meta.endpoint_url == "http://moto:4566"
    assert sync_client("sqs", emulator).meta.endpoint_url == "http://localstack:4566"


async def test_the_async_factory_honours_per_service_variables(
    emulator: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://bus:4566")
    async with ClientFactory(emulator) as clients:
        assert (await clients.get("events")).meta.endpoint_url == "http://bus:4566"
        assert (await clients.get("dynamodb")).meta.endpoint_url == "http://localstack:4566"


def test_no_endpoint_on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SEQFERRY_AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://moto:4566")
    # botocore reads the per-service variables itself where no emulator is configured
    assert ServiceSettings().endpoint_url_for("dynamodb") is None


def test_the_datasync_override_wins(emulator: ServiceSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DATASYNC", "http://elsewhere:4566")
    settings = emulator.model_copy(update={"datasync_endpoint_url": "http://datasync-standin:9000"})
    assert settings.endpoint_url_for("datasync") == "http://datasync-standin:9000"
