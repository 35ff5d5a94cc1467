"""Run `seqferry` the way a person does: the installed console script, as its own process, with its own environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from seqferry_shared.testing.stack import SERVICES, Stack, start_stack, stop_stack, wait_ready

REPO = Path(__file__).resolve().parents[3]
SEQFERRY = Path(sys.executable).with_name("seqferry")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """The environment of one deployment; ``run`` starts the console script in it."""

    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [str(SEQFERRY), *args]

    def environment(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SEQFERRY_", "AWS_"))}
        return {**base, "COLUMNS": "200", **self.env, **extra}

    def run(self, *args: str, timeout: float = 120, stdin: str | None = None, **extra: str) -> Result:
        done = subprocess.run(
            self.command(*args),
            env=self.environment(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The `make dev` Procfile on free ports, shared by the tests of a module (it takes ~15 s to start)."""
    tmp = tmp_path_factory.mktemp("cli-stack")
    running = start_stack(
        REPO,
        tmp,
        {
            "SEQFERRY_START_INTERVAL_S": "0",
            "SEQFERRY_LOCAL__QUIET_PERIOD_S": "1",
            "SEQFERRY_LOCAL__INDEX_PATH": str(tmp / "state" / "index.sqlite"),
            "SEQFERRY_STATE_DIR": str(tmp / "state" / "simulator"),
        },
    )
    try:
        wait_ready(running, timeout_s=90)
        yield running
    finally:
        stop_stack(running)


@pytest.fixture(scope="module")
def stack_cli(stack: Stack) -> Cli:
    env = {
        **aws_env(stack.env["AWS_ENDPOINT_URL"]),
        "SEQFERRY_SEQUENCER_PATHS": stack.env["SEQFERRY_SEQUENCER_PATHS"],
        **{f"SEQFERRY_{s.upper()}_URL": stack.url(s).rstrip("/") for s in SERVICES},
    }
    return Cli(env)
