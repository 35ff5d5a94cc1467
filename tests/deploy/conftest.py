"""Fixtures of the packaging and deployment tests: rendering the chart with Helm's own engine.

The chart is rendered and linted with ``helm-python-sdk`` (Helm's Go SDK in a shared library: the same template
engine, schema validation and linter as the ``helm`` binary, offline). Where it is not installed, the tests that
need it are skipped, saying so; the schema and static checks still run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

# The tests import their helpers as a plain module (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from deploy_support import CHART, NAMESPACE, RELEASE, Render, Rendered, deep_merge, load_yaml


@pytest.fixture(scope="session")
def helm() -> ModuleType:
    return pytest.importorskip(
        "helm_python",
        reason="helm-python-sdk (Helm's engine) is not installed: chart rendering and lint are not checked",
    )


@pytest.fixture(scope="session")
def render(helm: ModuleType) -> Render:
    chart = helm.Chart.load(str(CHART))
    defaults = load_yaml(CHART / "values.yaml")

    def _render(values: dict[str, Any]) -> Rendered:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        objects: list[dict[str, Any]] = []
        notes = ""
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                notes = text
                continue
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return Rendered(objects=objects, notes=notes, values=deep_merge(defaults, values))

    return _render
