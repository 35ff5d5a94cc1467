"""Hostile HTTP callers against real service processes (uvicorn, as deployed): a 300 MB chunked upload without a
token, and one with the token but over the body limit, are refused early, and the process's memory stays flat."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seqferry_shared.testing.motoserver import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "hostile-callers-test-token-0123456789"
UPLOAD_BYTES = 300 * 1024 * 1024
CHUNK = 1024 * 1024
# A service that never reads a refused body grows by a few MB at most; reading 300 MB took one to 1.25 GB.
RSS_GROWTH_LIMIT = 50 * 1024 * 1024


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def rss(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@pytest.fixture
def service(
    request: pytest.FixtureRequest, settings_env: dict[str, str], bootstrapped: dict[str, Any], tmp_path: Path
) -> Iterator[Service]:
    module = request.param
    port = free_port()
    log = tmp_path / f"{module}.log"
    env = {
        **os.environ,
        **settings_env,
        "SEQFERRY_HTTP_PORT": str(port),
        "SEQFERRY_API_TOKEN": TOKEN,
        "SEQFERRY_NAS_ROOT": str(tmp_path / "nas"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Service(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Upload:
    status: int | None
    headers: str
    sent: int


def chunked_upload(port: int, path: str, headers: dict[str, str]) -> Upload:
    """POST a 300 MB chunked JSON-looking body, stopping as soon as the server answers or drops the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
            "Transfer-Encoding: chunked", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    sent = 0
    chunk = b'{"paths": ["' + b"x" * (CHUNK - 12)
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < UPLOAD_BYTES:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            chunk = b"x" * CHUNK
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    text = answer.decode("latin-1")
    status = int(text.split()[1]) if text.startswith("HTTP/1.1 ") else None
    return Upload(status, text.split("\r\n\r\n")[0], sent)


def peak_rss_during(service: Service, action: Any) -> tuple[int, Any]:
    """Run ``action`` while sampling the service's resident memory; returns (peak growth, action's result)."""
    baseline = service.rss()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, service.rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
        time.sleep(0.5)  # memory a server keeps after answering counts too
    finally:
        done.set()
        sampler.join()
    return peak - baseline, result


ENDPOINTS = [("seqferry_adhoc", "/transfers"), ("seqferry_simulator", "/runs")]


@pytest.mark.parametrize(("service", "path"), ENDPOINTS, indirect=["service"], ids=["adhoc", "simulator"])
def test_300mb_chunked_body_without_a_token_is_refused_before_it_is_read(service: Service, path: str) -> None:
    # GIVEN a running service process WHEN a caller without a token streams 300 MB chunked (no Content-Length)
    growth, upload = peak_rss_during(service, lambda: chunked_upload(service.port, path, {}))
    # THEN it answers 401 and closes before the body is through, and its memory did not grow with the body
    assert upload.status == 401, upload
    assert "connection: close" in upload.headers.lower()
    assert upload.sent < UPLOAD_BYTES
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 1e6:.0f} MB"
    assert service.process.poll() is None


@pytest.mark.parametrize(("service", "path"), ENDPOINTS, indirect=["service"], ids=["adhoc", "simulator"])
def test_300mb_chunked_body_with_the_token_is_cut_off_at_the_body_limit(service: Service, path: str) -> None:
    # GIVEN a caller with the token WHEN it streams 300 MB chunked
    headers = {"Authorization": f"Bearer {TOKEN}"}
    growth, upload = peak_rss_during(service, lambda: chunked_upload(service.port, path, headers))
    # THEN it is refused with 413 once the body passes the limit, and memory stays flat
    assert upload.status == 413, upload
    assert upload.sent < UPLOAD_BYTES
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 1e6:.0f} MB"
    assert service.process.poll() is None
