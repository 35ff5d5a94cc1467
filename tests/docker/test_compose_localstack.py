"""compose.yaml against LocalStack on a machine where LocalStack's image cannot be pulled: LocalStack's Python
package in a locally built image (deploy/compose/localstack-local.yaml), started with compose.yaml's SERVICES,
serving everything but DynamoDB, which the SDKs' AWS_ENDPOINT_URL_DYNAMODB sends to moto.

A simulated run goes from the simulator container through the executor container into LocalStack's S3, where the
bucket's default SSE-KMS encryption makes LocalStack's S3 call its KMS for every object, and is announced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from docker_support import (
    BUCKET,
    BUS,
    SERVICES,
    ComposeProject,
    assert_bucket_holds,
    run_files,
    start_run,
    wait_for_event,
)

from seqferry_shared.testing.bustap import BusTap

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(localstack_local_stack: ComposeProject) -> Iterator[ComposeProject]:
    env = {
        "AWS_ENDPOINT_URL": localstack_local_stack.emulator_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield localstack_local_stack


def test_a_run_lands_in_localstack_encrypted_with_kms_and_is_announced(stack: ComposeProject) -> None:
    # GIVEN the stack on LocalStack: every service healthy, the state table on moto
    for service in SERVICES:
        assert stack.container(service).attrs["State"]["Health"]["Status"] == "healthy", service
    health: dict[str, Any] = stack.container("localstack").attrs["Config"]["Env"]
    assert any(v.startswith("SERVICES=") and "kms" in v for v in health)
    tap = BusTap(BUS, name="compose-localstack-observer")
    # WHEN the simulator container writes a run
    run = start_run(stack, {"cycles": "6,6", "pace": "4", "seed": 5})
    # THEN the notifier announces it, and LocalStack's S3 holds every file, SSE-KMS encrypted
    done = wait_for_event(stack, tap, "Run Transfer Completed", {"run_id": run["run_id"]}, 300, ticks=True)
    files = run_files(stack, done["nas_path"])
    assert done["files"] == len(files)
    assert_bucket_holds(files)
    s3 = boto3.client("s3")
    for key in files:
        assert s3.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "aws:kms", key
    # AND the state table the services used is moto's: LocalStack's own DynamoDB cannot start here
    for service in SERVICES:
        env = stack.container(service).attrs["Config"]["Env"]
        assert "AWS_ENDPOINT_URL_DYNAMODB=http://dynamodb:4566" in env, service
