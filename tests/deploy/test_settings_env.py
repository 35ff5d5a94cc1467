"""Every SEQFERRY_* variable that compose.yaml or the chart gives a service is a setting that service reads.

Settings ignore unknown variables, so a misspelt name would otherwise be dropped without a word.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deploy_support import REPO, SCENARIOS, SERVICES, Render, load_yaml, scenario_values
from pydantic import BaseModel
from pydantic_settings import BaseSettings

SETTINGS = {
    "scheduler": "seqferry_scheduler.settings:SchedulerSettings",
    "executor": "seqferry_executor.settings:ExecutorSettings",
    "adhoc": "seqferry_adhoc.settings:AdhocSettings",
    "simulator": "seqferry_simulator.settings:SimulatorSettings",
    "notifier": "seqferry_notifier.settings:NotifierSettings",
}
# Set for the image and its tooling, not read as settings.
NOT_SETTINGS = {"SEQFERRY_SERVICE"}


def settings_class(service: str) -> type[BaseSettings]:
    module, _, name = SETTINGS[service].partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, BaseSettings)
    return cls


def unknown_settings(service: str, names: set[str]) -> list[str]:
    """The SEQFERRY_* names among ``names`` that no field of the service's settings reads."""
    cls = settings_class(service)
    delimiter = cls.model_config.get("env_nested_delimiter")
    unknown = []
    for name in sorted(n for n in names if n.startswith("SEQFERRY_") and n not in NOT_SETTINGS):
        path = name.removeprefix("SEQFERRY_").lower()
        parts = path.split(delimiter.lower()) if delimiter else [path]
        model: Any = cls
        for part in parts:
            field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
            if field is None:
                unknown.append(name)
                break
            model = field.annotation
    return unknown


def test_unknown_names_are_found() -> None:
    assert unknown_settings("scheduler", {"SEQFERRY_INTERVAL", "SEQFERRY_INTERVALL", "OTEL_SERVICE_NAME"}) == [
        "SEQFERRY_INTERVALL"
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_only_known_settings(service: str) -> None:
    environment = load_yaml(REPO / "compose.yaml")["services"][service]["environment"]
    assert unknown_settings(service, set(environment)) == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_chart_sets_only_known_settings(render: Render, name: str) -> None:
    rendered = render(scenario_values(name))
    shared = set(rendered.named("ConfigMap", "seqferry-config")["data"])
    for deployment in rendered.of_kind("Deployment"):
        service = deployment["metadata"]["name"].removeprefix("seqferry-")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        names = shared | {entry["name"] for entry in container["env"]}
        assert unknown_settings(service, names) == [], service


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_refuses_to_start_on_a_path_whose_instrument_is_unclear(service: str, tmp_path: Path) -> None:
    # GIVEN a sequencer folder named after a family, not an instrument
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQFERRY_")}
    env.update({"SEQFERRY_SEQUENCER_PATHS": "/sequencers/incoming/miseq,/sequencers/incoming/hiseq"})
    # WHEN the service's command starts
    result = subprocess.run(
        [sys.executable, "-m", f"seqferry_{service}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it stops at once, naming the path and the tags to choose from
    assert result.returncode != 0
    assert "sequencer path #2 '/sequencers/incoming/hiseq'" in result.stderr
    assert "tag it as '/sequencers/incoming/hiseq=<instrument>'" in result.stderr
    assert "hiseq2500" in result.stderr
