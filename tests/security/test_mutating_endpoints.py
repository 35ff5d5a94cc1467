"""Every mutating endpoint of every service checks the bearer token before one byte of the body is read.

The apps are built as their ``__main__`` builds them (no lifespan: nothing behind the guard may run), and every
route with POST, PUT, PATCH or DELETE is called with a body that records whether anyone pulled from it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from seqferry_adhoc.app import create_app as adhoc_app
from seqferry_adhoc.settings import AdhocSettings
from seqferry_executor.app import create_app as executor_app
from seqferry_executor.settings import ExecutorSettings
from seqferry_notifier.app import create_app as notifier_app
from seqferry_notifier.settings import NotifierSettings
from seqferry_scheduler.app import create_app as scheduler_app
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_simulator.app import create_app as simulator_app
from seqferry_simulator.settings import SimulatorSettings

TOKEN = "mutating-endpoints-test-token-0123"
MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def apps(tmp: Path) -> dict[str, Callable[[], FastAPI]]:
    common = {"environment": "test", "api_token": TOKEN, "prefix": "tguard"}
    return {
        "adhoc": lambda: adhoc_app(AdhocSettings(**common)),
        "executor": lambda: executor_app(ExecutorSettings(**common, nas_root=tmp)),
        "notifier": lambda: notifier_app(NotifierSettings(**common)),
        "scheduler": lambda: scheduler_app(SchedulerSettings(**common)),
        "simulator": lambda: simulator_app(SimulatorSettings(**common, nas_root=tmp)),
    }


def mutating_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every documented mutating operation, path parameters filled in."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]*\}", "x", path)
        found.extend((method.upper(), concrete) for method in operations if method.upper() in MUTATING_METHODS)
    return sorted(found)


class WatchedBody:
    """A streamed (chunked) request body that remembers whether anyone read from it."""

    def __init__(self) -> None:
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(4):
            self.pulled += 1
            yield b'{"x": "' + b"y" * 65536 + b'"}'


SERVICES = ["adhoc", "executor", "notifier", "scheduler", "simulator"]


@pytest.mark.parametrize("service", SERVICES)
async def test_every_mutating_route_refuses_a_missing_or_wrong_token_without_reading_the_body(
    service: str, tmp_path: Path
) -> None:
    app = apps(tmp_path)[service]()
    routes = mutating_routes(app)
    # The services' mutating endpoints, listed so that a new one is seen here (and an empty list is not a pass).
    expected = {
        "adhoc": [("POST", "/transfers")],
        "executor": [],
        "notifier": [],
        "scheduler": [("POST", "/ticks")],
        "simulator": [("POST", "/runs")],
    }
    assert routes == expected[service]
    # An undeclared path or method is refused the same way: the guard looks at the method, not at the routes.
    routes = [*routes, ("DELETE", "/runs/x"), ("PUT", "/anything"), ("PATCH", "/executions/x")]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for method, path in routes:
            for headers, status in (
                ({}, 401),
                ({"Authorization": "Bearer wrong"}, 403),
                ({"Authorization": TOKEN}, 401),
            ):
                body = WatchedBody()
                answer = await client.request(method, path, content=body, headers=headers)
                assert answer.status_code == status, (method, path, headers, answer.text)
                assert answer.headers["connection"] == "close"
                assert body.pulled == 0, f"{method} {path}: the body was read before the token was checked"
