"""Run the dev Procfile (what `make dev` runs) as a test fixture: free ports, a private NAS and emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqferry_shared.testing.motoserver import free_port

SERVICES = ("notifier", "scheduler", "executor", "adhoc", "simulator")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    ports: dict[str, int]
    nas: Path
    log: Path

    def url(self, service: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def post_json(url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    """POST ``body`` as JSON with a bearer token; the decoded JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - a test service's loopback URL
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
        return result


def wait_ready(stack: Stack, timeout_s: float) -> dict[str, float]:
    """Seconds until each service's /readyz answered 200."""
    started = time.monotonic()
    ready: dict[str, float] = {}
    while len(ready) < len(SERVICES):
        if stack.process.poll() is not None:
            raise AssertionError(f"stack exited early:\n{stack.log_tail()}")
        for service in SERVICES:
            if service in ready:
                continue
            try:
                url = stack.url(service, "/readyz")
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - the stack's loopback URL
                    if response.status == 200:
                        ready[service] = time.monotonic() - started
            except OSError:
                pass
        if time.monotonic() - started > timeout_s:
            missing = sorted(set(SERVICES) - set(ready))
            raise AssertionError(f"not ready within {timeout_s} s: {missing}\n{stack.log_tail()}")
        time.sleep(0.5)
    return ready


def start_stack(repo: Path, tmp_path: Path, extra_env: dict[str, str]) -> Stack:
    """Run the dev Procfile (what `make dev` runs) on free ports with a private NAS and emulator."""
    ports = {service: free_port() for service in SERVICES}
    emulator = free_port()
    nas = tmp_path / "nas"
    nas.mkdir()
    env_file = tmp_path / "stack.env"
    dev_env = dict(
        line.split("=", 1) for line in (repo / "dev.env").read_text().splitlines() if line and not line.startswith("#")
    )
    values = {
        **dev_env,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{emulator}",
        "SEQFERRY_EMULATOR_PORT": str(emulator),
        "SEQFERRY_NAS_ROOT": str(nas),
        "SEQFERRY_STATE_DIR": str(tmp_path / "state"),
        **{f"SEQFERRY_{s.upper()}_PORT": str(p) for s, p in ports.items()},
        **extra_env,
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQFERRY_", "AWS_", "OTEL_"))}
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [str(repo / ".venv/bin/honcho"), "-e", str(env_file), "-f", str(repo / "Procfile"), "start"],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Stack(process=process, env=values, ports=ports, nas=nas, log=log)


def stop_stack(stack: Stack) -> None:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait()


def leftover_processes(stack: Stack) -> list[str]:
    """Processes still alive in the stack's session (Ctrl-C must leave none)."""
    out = subprocess.run(  # noqa: S603
        ["/bin/ps", "-o", "pid=,args=", "-s", str(stack.process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


@dataclass
class ServiceProcess:
    """One service started as its own process (``python -m seqferry_<name>``) with exactly the given environment."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("/readyz"), timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not ready within {timeout_s} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(name: str, env: dict[str, str], *, cwd: Path, log: Path) -> ServiceProcess:
    """Start ``seqferry_<name>`` on a free port in ``cwd``; ``env`` is its whole environment (plus PATH)."""
    port = free_port()
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env, "SEQFERRY_HTTP_PORT": str(port)}
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", f"seqferry_{name}"], cwd=cwd, env=full, stdout=out, stderr=subprocess.STDOUT
        )
    return ServiceProcess(name=name, port=port, process=process, log=log)
