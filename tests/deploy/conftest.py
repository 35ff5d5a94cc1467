"""Fixtures of the packaging and deployment tests: rendering the chart with Helm's own engine.

The chart is rendered and linted with ``helm-python-sdk`` (Helm's Go SDK in a shared library: the same template
engine, schema validation and linter as the ``helm`` binary, offline). Where it is not installed, the tests that
need it are skipped, saying so; the schema and static checks still run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

# The tests import their helpers as a plain module (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from deploy_support import (
    AWS_PROVIDER,
    CHART,
    NAMESPACE,
    PLUGIN_DIR,
    RELEASE,
    TERRAFORM_DIR,
    Render,
    Rendered,
    deep_merge,
    load_yaml,
    run_terraform,
    terraform_binary,
)


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


# -- Terraform, offline: providers from a local plugin directory, a copy of the module per session ---------------


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cli_config = tmp_path_factory.mktemp("tfcli") / "terraformrc"
    cli_config.write_text("", encoding="utf-8")
    env = dict(os.environ)
    # No version check against the network; no user CLI configuration; no prompts.
    env.update({"CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config), "TF_IN_AUTOMATION": "1"})
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    return env


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str]) -> Path:
    terraform_binary()
    if not AWS_PROVIDER.is_dir():
        pytest.skip(f"no hashicorp/aws provider under {PLUGIN_DIR} (set SEQFERRY_TF_PLUGIN_DIR): init needs it offline")
    # A copy, so init's .terraform/ and lock file never land in the repository.
    directory = tmp_path_factory.mktemp("terraform") / "module"
    shutil.copytree(TERRAFORM_DIR, directory, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfvars"))
    result = run_terraform(
        ["init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}"], directory, tf_env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return directory
