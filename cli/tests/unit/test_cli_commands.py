"""The command line without a deployment: validation before sending, help, completion, errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqferry_cli.__main__ import run
from seqferry_cli.errors import ExitCode
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.testing.motoserver import free_port
from seqferry_shared.validation import Rejected, validate_transfer

SEQFERRY = Path(sys.executable).with_name("seqferry")


@pytest.fixture(autouse=True)
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Every AWS endpoint and service URL points at a closed port: a command that sends anything fails with 3."""
    closed = f"http://127.0.0.1:{free_port()}"
    for name in list(os.environ):
        if name.startswith("SEQFERRY_") or name in ("AWS_PROFILE",):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for service in ("notifier", "scheduler", "executor", "adhoc", "simulator"):
        monkeypatch.setenv(f"SEQFERRY_{service.upper()}_URL", closed)
    return closed


def test_a_bad_path_fails_locally_with_exit_2_and_the_executors_message(capsys: pytest.CaptureFixture[str]):
    paths = ["/sequencers/incoming/miseq/ok", "/etc/passwd", "/sequencers/incoming/miseq/*/Data", "relative/x"]
    # WHEN a request names bad paths
    code = run(["request", *paths, "--wait"])
    err = capsys.readouterr().err
    # THEN it exits 2 before sending anything (the closed AWS port would have made it 3)
    assert code == ExitCode.INVALID == 2
    assert "request not sent: 3 problem(s)" in err
    # AND every reason is the one the executor itself would record
    roots = ServiceSettings().roots
    verdict = validate_transfer(task=None, includes=paths, roots=roots, default_task="x", known_tasks=None)
    assert isinstance(verdict, Rejected)
    for reason in verdict.reasons:
        assert reason in err
    assert "include #2 '/etc/passwd': path is outside the allowed roots" in err
    assert "Traceback" not in err


def test_paths_are_checked_against_the_configured_roots(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/nas/novaseq=novaseq6000")
    assert run(["request", "/sequencers/incoming/miseq/run"]) == 2
    assert "outside the allowed roots /nas/novaseq, /adhoc" in capsys.readouterr().err


def test_messages_are_literal_text(capsys: pytest.CaptureFixture[str]):
    # A path from a hostile manifest or NAS may carry console markup; it is shown, never interpreted.
    assert run(["request", "/etc/[bold red]x[/bold red]"]) == 2
    assert "'/etc/[bold red]x[/bold red]'" in capsys.readouterr().err


def test_an_unreachable_aws_endpoint_is_exit_3_without_a_traceback(capsys: pytest.CaptureFixture[str], nowhere: str):
    code = run(["request", "/sequencers/incoming/miseq/run"])
    err = capsys.readouterr().err
    assert code == ExitCode.UNAVAILABLE == 3
    assert "seqferry: error: cannot reach AWS" in err
    assert "hint: check --endpoint-url / AWS_ENDPOINT_URL" in err
    assert "Traceback" not in err


def test_wait_needs_the_executor_before_anything_is_sent(capsys: pytest.CaptureFixture[str], nowhere: str):
    code = run(["request", "/sequencers/incoming/miseq/run", "--wait"])
    err = capsys.readouterr().err
    assert code == 3
    assert f"cannot reach the executor at {nowhere}" in err
    assert "SEQFERRY_EXECUTOR_URL" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--output", "xml", "status"],
        ["request"],
        ["simulate", "hiseq"],
        ["simulate", "miseq", "--scale", "0"],
        ["request", "/sequencers/incoming/miseq/x", "--request-id", "has space"],
        ["nosuchcommand"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]):
    assert run(args) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_documents_exit_codes_settings_and_permissions(capsys: pytest.CaptureFixture[str]):
    assert run(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "Exit codes",
        "4 --timeout passed",
        "130 interrupted",
        "events:PutEvents",
        "[profiles.NAME]",
        "--profile",
        "--region",
        "--endpoint-url",
        "--output",
        "--install-completion",
    ):
        assert text in out


@pytest.mark.parametrize("command", ["request", "wait", "manifest", "runs", "run", "status", "doctor", "simulate"])
def test_every_command_has_help_with_examples(command: str, capsys: pytest.CaptureFixture[str]):
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out
    assert f"seqferry {command}" in out


def test_version(capsys: pytest.CaptureFixture[str]):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("seqferry 0.")


def complete(words: str) -> list[str]:
    env = {
        **os.environ,
        "_SEQFERRY_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    result = subprocess.run([str(SEQFERRY)], env=env, capture_output=True, text=True, timeout=60, check=False)
    return result.stdout.split()


def test_shell_completion_of_commands_options_and_instruments():
    assert "simulate" in complete("seqferry sim")
    assert {"--profile", "--region", "--endpoint-url"} <= set(complete("seqferry --"))
    assert set(complete("seqferry simulate nova")) == {"novaseq6000", "novaseqx"}
    assert set(complete("seqferry --output ")) == {"table", "json"}
    script = subprocess.run(
        [str(SEQFERRY), "--show-completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "SHELL": "/bin/bash"},
    ).stdout
    assert "_SEQFERRY_COMPLETE=complete_bash" in script
