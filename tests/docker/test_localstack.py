"""Bootstrap, the bus → queue → consumer round trip and an SSE-KMS upload against LocalStack in Docker.

LocalStack starts with compose.yaml's own ``SERVICES`` list, so a service compose forgets is caught here. The image
is compose.yaml's (``localstack/localstack:4.14.0``) where it is present or can be pulled; where no registry
answers, the image `make images` builds from LocalStack's Python package (deploy/localstack/), whose DynamoDB
cannot run (it needs a Java download), so DynamoDB goes to the suite's moto server through
``AWS_ENDPOINT_URL_DYNAMODB``. Without either image, or without a Docker engine, the tier is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from docker_support import REPO, free_port, load_images_module

from seqferry_executor.backends.local.config import LocalBackendConfig
from seqferry_executor.backends.local.uploader import CrtUploader, Endpoint
from seqferry_shared.bootstrap import bootstrap
from seqferry_shared.events import TransferRequested
from seqferry_shared.messaging.routing import MessageContext, Router
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import setup_telemetry
from seqferry_shared.testing.motoserver import MotoServer

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(300)]


def compose_service(name: str) -> dict[str, Any]:
    import yaml  # noqa: PLC0415

    service: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())["services"][name]
    return service


def compose_localstack() -> dict[str, Any]:
    return compose_service("localstack")


@dataclass(frozen=True)
class LocalStack:
    url: str
    image: str
    routes: dict[str, str]


def pick_image(client: Any) -> tuple[str, bool]:
    """compose.yaml's image where it can be had, else the one built from LocalStack's Python package."""
    import docker.errors  # noqa: PLC0415

    official = str(compose_localstack()["image"])
    try:
        client.images.get(official)
        return official, True
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(official)
        return official, True
    except docker.errors.APIError as exc:
        pull_error = str(exc)[:160]
    local = str(load_images_module().localstack_image())
    try:
        client.images.get(local)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{official} cannot be pulled ({pull_error}) and {local} is not built (`make images`)")
    return local, False


def wait_until_serving(url: str, services: list[str], container: Any, timeout_s: float) -> None:
    """Until /_localstack/health lists every service as available (or already running)."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_localstack/health", timeout=3) as response:
                states = json.loads(response.read())["services"]
            if all(states.get(s) in {"available", "running"} for s in services):
                return
        except OSError:
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.5)
    logs = container.logs(tail=40).decode(errors="replace")
    raise AssertionError(f"LocalStack not serving {services} within {timeout_s} s: {states}\n{logs}")


@pytest.fixture(scope="module")
def localstack(docker_engine: Any, moto_server: MotoServer) -> Iterator[LocalStack]:
    image, official = pick_image(docker_engine)
    services = [s.strip() for s in compose_localstack()["environment"]["SERVICES"].split(",")]
    routes = {}
    if not official:
        services.remove("dynamodb")
        routes["AWS_ENDPOINT_URL_DYNAMODB"] = moto_server.url
    port = free_port()
    container = docker_engine.containers.run(
        image,
        detach=True,
        name=f"seqferry-localstack-t{secrets.token_hex(4)}",
        environment={"SERVICES": ",".join(services)},
        ports={"4566/tcp": ("127.0.0.1", port)},  # loopback only
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, services, container, timeout_s=120)
        yield LocalStack(url=url, image=image, routes=routes)
    finally:
        container.remove(force=True, v=True)


@pytest.fixture
def on_localstack(localstack: LocalStack, resource_prefix: str, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    monkeypatch.setenv("AWS_ENDPOINT_URL", localstack.url)
    for key, value in localstack.routes.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    return ServiceSettings(prefix=resource_prefix, environment="test", sqs_wait_time_s=1)


async def test_round_trip_on_localstack(on_localstack: ServiceSettings) -> None:
    settings = on_localstack
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


def test_the_bootstrapped_bucket_stores_objects_encrypted_with_kms(on_localstack: ServiceSettings) -> None:
    # GIVEN the bucket as bootstrap leaves it: SSE-KMS by default, so S3 calls KMS on every upload
    bootstrap(on_localstack)
    s3 = boto3.client("s3")
    bucket = on_localstack.names.bucket
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # WHEN a file is uploaded (LocalStack answers "Service 'kms' is not enabled" when compose's list lacks kms)
    stored = s3.put_object(Bucket=bucket, Key="sequencers/incoming/miseq/run/RunInfo.xml", Body=b"<RunInfo/>")
    # THEN it is stored encrypted with a KMS key and reads back unchanged
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"].startswith("arn:aws:kms:")
    body = s3.get_object(Bucket=bucket, Key="sequencers/incoming/miseq/run/RunInfo.xml")["Body"].read()
    assert body == b"<RunInfo/>"


async def test_the_executor_uploads_with_composes_checksum(on_localstack: ServiceSettings, tmp_path: Path) -> None:
    # GIVEN the executor's local engine configured as compose.yaml configures it
    environment = compose_service("executor")["environment"]
    config = LocalBackendConfig(checksum=environment.get("SEQFERRY_LOCAL__CHECKSUM", "crc32c"))
    bootstrap(on_localstack)
    bucket = on_localstack.names.bucket
    source = tmp_path / "s_1_1101.bcl"
    source.write_bytes(os.urandom(100_000))
    uploader = CrtUploader(
        endpoint=Endpoint.of(on_localstack.aws_endpoint_url, on_localstack.aws_region, bucket),
        region=on_localstack.aws_region,
        credentials=lambda: ("test", "test", None),
        static_credentials=True,
        config=config,
    )
    try:
        # WHEN it uploads a file with its checksum sent as a trailer (as it does against S3)
        result = await uploader.put(
            path=str(source), key="runs/s_1_1101.bcl", size=100_000, metadata={}, tags={"seqferry-class": "basecalls"}
        )
    finally:
        await uploader.close()
    # THEN LocalStack accepts it and stores the same bytes
    assert result.status == 200
    stored = boto3.client("s3").get_object(Bucket=bucket, Key="runs/s_1_1101.bcl")["Body"].read()
    assert stored == source.read_bytes()
