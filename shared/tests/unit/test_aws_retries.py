"""Retry policy of every botocore client: standard mode by default, adaptive on request, a wrong mode refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.settings import ServiceSettings


@pytest.fixture(autouse=True)
def _no_retry_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SEQFERRY_AWS_RETRY_MODE", "SEQFERRY_AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


async def test_clients_retry_in_standard_mode_by_default() -> None:
    # GIVEN no retry setting
    settings = ServiceSettings()

    # THEN async and sync clients back off per call, eight attempts in all, without a client-wide rate limiter
    expected = {"mode": "standard", "total_max_attempts": 8}
    async with ClientFactory(settings) as clients:
        assert (await clients.get("s3")).meta.config.retries == expected
        assert (await clients.get("events")).meta.config.retries == expected
    assert sync_client("s3", settings).meta.config.retries == expected


async def test_adaptive_mode_and_attempts_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a lab that wants botocore's client-side rate limiting and fewer attempts
    monkeypatch.setenv("SEQFERRY_AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("SEQFERRY_AWS_MAX_ATTEMPTS", "4")
    settings = ServiceSettings()

    # THEN every client gets them
    expected = {"mode": "adaptive", "total_max_attempts": 4}
    async with ClientFactory(settings) as clients:
        assert (await clients.get("dynamodb")).meta.config.retries == expected
    assert sync_client("sqs", settings).meta.config.retries == expected


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SEQFERRY_AWS_RETRY_MODE", "legacy", "Input should be 'standard' or 'adaptive'"),
        ("SEQFERRY_AWS_RETRY_MODE", "", "Input should be 'standard' or 'adaptive'"),
        ("SEQFERRY_AWS_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ],
)
def test_a_wrong_retry_setting_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        ServiceSettings()
    message = str(refused.value)
    assert variable.removeprefix("SEQFERRY_").lower() in message
    assert reason in message
