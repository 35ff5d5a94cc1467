"""Start and stop moto's server mode as a subprocess (real HTTP, no in-process patching).

The server is :mod:`seqferry_shared.emulator` (moto without its register of every object it made), as in ``make dev``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LoopbackProcess:
    """A test-owned server process on a loopback port: its URL, its log, a stop that never leaves it running."""

    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, name: str, probe: Callable[[], object], timeout_s: float) -> None:
        """Until ``probe`` stops raising OSError; stops the process and raises if it exits or never answers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {self.process.returncode}")
            try:
                probe()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not answer on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.log is not None:
            self.log.close()


@dataclass
class MotoServer(LoopbackProcess):
    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310 - loopback URL
        urllib.request.urlopen(req, timeout=10).close()  # noqa: S310 - loopback URL built above


def start_moto_server(port: int | None = None, log_path: Path | None = None, timeout_s: float = 30.0) -> MotoServer:
    port = port or free_port()
    log = log_path.open("ab") if log_path else None
    env = {**os.environ, "MOTO_PORT": str(port)}
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "seqferry_shared.emulator", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = MotoServer(port=port, process=process, log=log)

    def probe() -> None:
        urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=1).close()  # noqa: S310

    server.wait_ready("moto server", probe, timeout_s)
    return server
