"""Paths, scenarios and small helpers shared by the packaging and deployment tests."""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "seqferry"
TERRAFORM_DIR = REPO / "deploy" / "terraform"
PLUGIN_DIR = Path(os.environ.get("SEQFERRY_TF_PLUGIN_DIR", "/opt/tf-plugins"))
AWS_PROVIDER = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws"
SCENARIOS = sorted(p.name for p in (CHART / "ci").glob("*.yaml"))
SERVICES = ("scheduler", "executor", "adhoc", "simulator", "notifier")
PORTS = {"notifier": 8080, "scheduler": 8081, "executor": 8082, "adhoc": 8083, "simulator": 8084}
RELEASE = "seqferry"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
NAMESPACE = "lab"


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    return binary


def run_terraform(
    args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [terraform_binary(), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over the chart's defaults (maps merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def scenario_values(name: str) -> dict[str, Any]:
    values = load_yaml(CHART / "ci" / name)
    assert isinstance(values, dict)
    return values


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@dataclass
class Rendered:
    """The manifests of one render, by kind; NOTES.txt kept as text."""

    objects: list[dict[str, Any]]
    notes: str
    values: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
        return matches[0]

    def workloads(self) -> list[dict[str, Any]]:
        """The services' Deployments and StatefulSets (the executor of the local backend is a StatefulSet)."""
        return [o for o in self.objects if o["kind"] in WORKLOAD_KINDS]

    def deployment(self, component: str) -> dict[str, Any]:
        """The workload of one service, whichever its kind."""
        matches = [w for w in self.workloads() if w["metadata"]["name"] == f"{RELEASE}-{component}"]
        assert len(matches) == 1, f"{component}: {len(matches)} workloads"
        return matches[0]


Render = Callable[[dict[str, Any]], Rendered]
