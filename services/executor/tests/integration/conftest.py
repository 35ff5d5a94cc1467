"""Executor integration fixtures: the DataSync stand-in, a tap on the bus, an orchestrator wired to moto, and for the
local engine a counting proxy in front of moto and a factory of backends."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from seqferry_executor.backends.datasync import DataSyncBackend
from seqferry_executor.backends.local import LocalBackend
from seqferry_executor.service import Orchestrator
from seqferry_executor.settings import ExecutorSettings
from seqferry_executor.store import StateStore
from seqferry_executor.testing.datasync_standin import DataSyncStandIn, running_standin
from seqferry_shared.aws import ClientFactory
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.telemetry import Telemetry, setup_telemetry
from seqferry_shared.testing.bustap import BusTap
from seqferry_shared.testing.motoserver import MotoServer

# The local engine's tests share helpers from a plain module (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from local_support import CountingProxy


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return setup_telemetry("executor-tests", set_global=False)


@pytest.fixture
def standin() -> Iterator[DataSyncStandIn]:
    with running_standin() as server:
        yield server


@pytest.fixture
def tap(bootstrapped: dict[str, Any], resource_prefix: str) -> BusTap:
    return BusTap(resource_prefix, ["seqferry.executor"])


@pytest.fixture
def settings_for(resource_prefix: str, bootstrapped: dict[str, Any]) -> Callable[..., ExecutorSettings]:
    def build(**overrides: Any) -> ExecutorSettings:
        values: dict[str, Any] = {
            "prefix": resource_prefix,
            "environment": "test",
            "backend": "datasync",
            "aws_max_attempts": 2,
            "poll_interval_s": 0.2,
            "retry_base_s": 0.05,
            "retry_max_s": 0.2,
            "sqs_wait_time_s": 1,
            "sqs_visibility_timeout_s": 10,
        }
        values.update(overrides)
        return ExecutorSettings(**values)

    return build


@dataclass
class Harness:
    settings: ExecutorSettings
    orchestrator: Orchestrator
    store: StateStore
    backend: DataSyncBackend


@pytest.fixture
def harness_for(
    settings_for: Callable[..., ExecutorSettings],
) -> Callable[..., Any]:
    """An orchestrator on moto (table, bus) and a DataSync endpoint, driven directly by the test."""

    def factory(owner: str = "test-replica", **overrides: Any) -> Any:
        settings = settings_for(**overrides)

        @asynccontextmanager
        async def enter() -> AsyncIterator[Harness]:
            async with ClientFactory(settings) as clients:
                backend = await DataSyncBackend.create(settings=settings, clients=clients)
                store = StateStore(await clients.get("dynamodb"), settings.names.table, record_ttl=timedelta(days=1))
                publisher = EventPublisher(await clients.get("events"), settings.names.bus)
                orchestrator = Orchestrator(
                    backend=backend,
                    store=store,
                    publisher=publisher,
                    roots=settings.roots,
                    default_task=settings.default_task,
                    known_tasks=set(settings.datasync_task_arns),
                    owner=owner,
                    retry_base_s=settings.retry_base_s,
                    retry_max_s=settings.retry_max_s,
                )
                try:
                    yield Harness(settings, orchestrator, store, backend)
                finally:
                    await backend.close()

        return enter()

    return factory


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[CountingProxy]:
    counting = CountingProxy(moto_server.port)
    yield counting
    counting.close()


@pytest.fixture
async def factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Builds backends (and their client factories) and closes them all at the end."""
    opened: list[tuple[LocalBackend, ClientFactory]] = []

    async def build(settings: ExecutorSettings) -> LocalBackend:
        clients = ClientFactory(settings)
        backend = await LocalBackend.create(settings=settings, clients=clients)
        opened.append((backend, clients))
        return backend

    yield build
    for backend, clients in opened:
        await backend.close()
        await clients.close()
