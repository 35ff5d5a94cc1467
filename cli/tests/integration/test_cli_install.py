"""`pip install ./shared ./cli` gives a working `seqferry` with no service package anywhere.

Offline: the two wheels are built from this checkout and installed with --no-index into a throwaway venv; their
third-party dependencies come from the project's venv through a .pth line (which does not load the services'
editable installs), and `pip check` proves the declared requirements are met by what is there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from seqferry_shared.testing.bustap import BusTap
from seqferry_shared.testing.motoserver import MotoServer

from .conftest import REPO, aws_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


def sh(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, check=False, **kwargs)


def test_the_cli_installs_and_runs_alone(
    tmp_path: Path, moto_server: MotoServer, resource_prefix: str, bootstrapped: dict[str, Any]
):
    # GIVEN wheels of shared/ and cli/ built from a copy of this checkout
    source = tmp_path / "src"
    for member in ("shared", "cli"):
        shutil.copytree(REPO / member, source / member, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info"))
    wheels = tmp_path / "wheels"
    built = sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        wheels,
        source / "shared",
        source / "cli",
    )
    assert built.returncode == 0, built.stderr
    assert sorted(p.name.split("-")[0] for p in wheels.glob("*.whl")) == ["seqferry_cli", "seqferry_shared"]
    # AND a fresh venv with just those two, no index
    venv = tmp_path / "venv"
    assert sh(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)  # this pip, driving the fresh venv
    installed = sh(*pip, "install", "--quiet", "--no-index", "--no-deps", *wheels.glob("*.whl"))
    assert installed.returncode == 0, installed.stderr
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "zz-third-party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # THEN every requirement the two packages declare is met
    checked = sh(*pip, "check")
    problems = [line for line in checked.stdout.splitlines() if line.startswith(("seqferry-cli", "seqferry-shared"))]
    assert problems == [], checked.stdout
    # AND no service package can be imported there, and the CLI is the installed copy
    probe = sh(
        python,
        "-c",
        "import importlib.util as u, seqferry_cli; print(seqferry_cli.__file__); "
        "print([m for m in ('seqferry_executor', 'seqferry_adhoc', 'seqferry_notifier') if u.find_spec(m)])",
    )
    where, importable = probe.stdout.splitlines()
    assert where.startswith(str(venv))
    assert importable == "[]"
    # AND the console script works: local validation, and a real request on the bus
    seqferry = venv / "bin" / "seqferry"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **aws_env(moto_server.url),
        "SEQFERRY_PREFIX": resource_prefix,
    }
    assert sh(seqferry, "--version", env=env).stdout.startswith("seqferry 0.1.0")
    bad = sh(seqferry, "request", "/etc/passwd", env=env)
    assert bad.returncode == 2
    assert "path is outside the allowed roots" in bad.stderr
    tap = BusTap(resource_prefix, sources=["seqferry.cli"])
    sent = sh(seqferry, "-o", "json", "request", "/sequencers/incoming/miseq/run", env=env)
    assert sent.returncode == 0, sent.stderr
    assert tap.wait_for(lambda d: len(d) == 1)[0]["includes"] == ["/sequencers/incoming/miseq/run"]
