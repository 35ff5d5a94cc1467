from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seqferry_shared.aws import sync_client
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import Telemetry, setup_telemetry
from seqferry_simulator.settings import SimulatorSettings


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("simulator-tests", set_global=False)


@pytest.fixture
def sim_settings(bootstrapped: dict[str, Any], resource_prefix: str, tmp_path: Path) -> SimulatorSettings:
    return SimulatorSettings(
        prefix=resource_prefix,
        environment="test",
        nas_root=tmp_path / "nas",
        state_dir=tmp_path / "state",
        start_interval_s=0,
        sequencer_paths="/sequencers/incoming/miseq=miseq,/sequencers/incoming/novaseq=novaseq6000",
        pace="50",
        scale=1e-5,
    )


@pytest.fixture
def bus_observer(bootstrapped: dict[str, Any], resource_prefix: str) -> Iterator[str]:
    """A queue receiving every simulator event on the test's bus; yields its URL."""
    settings = ServiceSettings(prefix=resource_prefix, environment="test")
    sqs = sync_client("sqs", settings)
    events = sync_client("events", settings)
    url = sqs.create_queue(QueueName=f"{resource_prefix}-observe-simulator")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"{resource_prefix}-observe-simulator"
    bus = settings.names.bus
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["seqferry.simulator"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
    yield url
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=["observer"])
    events.delete_rule(Name=rule, EventBusName=bus)
    sqs.delete_queue(QueueUrl=url)
