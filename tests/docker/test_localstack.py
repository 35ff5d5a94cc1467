"""The same bootstrap and bus → queue → consumer round trip against LocalStack in Docker (testcontainers).

Runs wherever a Docker engine answers; elsewhere it is skipped, saying why.
"""

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest

from seqferry_shared.bootstrap import bootstrap
from seqferry_shared.consumer import MessageContext, Router
from seqferry_shared.events import TransferRequested
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import setup_telemetry

# Newer tags need LOCALSTACK_AUTH_TOKEN; this one starts without an account.
LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def docker_engine_error() -> str | None:
    """Ask the engine's /_ping over its socket; None when it answers OK."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        else:
            hostport = host.split("://", 1)[-1]
            name, _, port = hostport.partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port or 2375))
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"{host}: {exc}"
    if b" 200 " not in reply:
        return f"{host}: unexpected reply {reply[:40]!r}"
    return None


@pytest.fixture(scope="module")
def localstack_url() -> Iterator[str]:
    error = docker_engine_error()
    if error is not None:
        pytest.skip(f"no Docker engine answers ({error[:160]}); the LocalStack tier runs where one does")
    from testcontainers.localstack import LocalStackContainer  # noqa: PLC0415

    with LocalStackContainer(image=LOCALSTACK_IMAGE) as container:
        yield container.get_url()


async def test_round_trip_on_localstack(localstack_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", localstack_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    settings = ServiceSettings(prefix="tdocker", environment="test", sqs_wait_time_s=1)
    # GIVEN resources bootstrapped twice (idempotent on LocalStack too)
    assert bootstrap(settings) == bootstrap(settings)
    seen: list[str] = []
    router = Router()

    @router.on(TransferRequested)
    async def handle(detail: TransferRequested, ctx: MessageContext) -> None:
        seen.append(detail.request_id)

    async with ServiceRuntime(settings, "docker-tier", telemetry=setup_telemetry("t", set_global=False)) as rt:
        await rt.add_consumer(rt.names.executor_queue.name, router)
        rt.start()
        # WHEN an event is published on the bus
        await rt.publisher.publish(TransferRequested(request_id="ls-1", includes=["/sequencers/incoming/miseq/x"]))
        # THEN the consumer receives it through EventBridge → SQS
        for _ in range(300):
            if seen:
                break
            await asyncio.sleep(0.1)
    assert seen == ["ls-1"]
