"""Fixtures of the fault tier: the whole system as processes behind a fault proxy, torn down after each test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests import their helpers as plain modules (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from system import System, build_system


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")
    }
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
