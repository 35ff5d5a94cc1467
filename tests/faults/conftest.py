"""Fixtures of the fault tier: the whole system as processes behind a fault proxy, torn down after each test.

``SEQFERRY_FAULTS_PROFILE`` picks the size of every scenario: ``short`` (the default, what ``make test`` runs) or
``soak`` (``make faults``). ``SEQFERRY_FAULTS_REPORT`` names a JSON-lines file that collects each scenario's
measurements for ``docs/reliability.md``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests import their helpers as plain modules (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from scenario import Profile, Recorder, report_path
from system import System, build_system

_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")


@pytest.fixture(scope="session")
def profile() -> Profile:
    return Profile.named(os.environ.get("SEQFERRY_FAULTS_PROFILE", "short"))


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    built = build_system(tmp_path)
    try:
        yield built
    finally:
        built.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":
        item.stash[_OUTCOME] = report.outcome
        if report.failed and call.excinfo is not None:
            item.stash[_FAILURE] = call.excinfo.exconly()
    return report


_OUTCOME = pytest.StashKey[str]()
_FAILURE = pytest.StashKey[str]()


@pytest.fixture
def reliability(request: pytest.FixtureRequest, profile: Profile) -> Iterator[Recorder]:
    recorder = Recorder(request.node.nodeid, profile, report_path())
    yield recorder
    recorder.flush(request.node.stash.get(_OUTCOME, "error"), request.node.stash.get(_FAILURE, ""))
