"""Fixtures for end-to-end tests: an OTLP/HTTP trace receiver and the whole dev stack as separate processes."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from seqferry_shared.testing.motoserver import free_port

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("notifier", "scheduler", "executor", "adhoc", "simulator")


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str


@dataclass
class OtlpReceiver:
    port: int
    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                received = []
                for resource_spans in request.resource_spans:
                    service = next(
                        (
                            a.value.string_value
                            for a in resource_spans.resource.attributes
                            if a.key == "service.name"
                        ),
                        "?",
                    )
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            received.append(
                                ReceivedSpan(
                                    span.trace_id.hex(),
                                    span.span_id.hex(),
                                    span.parent_span_id.hex(),
                                    span.name,
                                    service,
                                )
                            )
                with receiver.lock:
                    receiver.spans.extend(received)
                payload = ExportTraceServiceResponse().SerializeToString()
            else:
                payload = b""
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver(port=free_port())
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


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
                with urllib.request.urlopen(stack.url(service, "/readyz"), timeout=2) as response:
                    if response.status == 200:
                        ready[service] = time.monotonic() - started
            except OSError:
                pass
        if time.monotonic() - started > timeout_s:
            missing = sorted(set(SERVICES) - set(ready))
            raise AssertionError(f"not ready within {timeout_s} s: {missing}\n{stack.log_tail()}")
        time.sleep(0.5)
    return ready


def start_stack(tmp_path: Path, extra_env: dict[str, str]) -> Stack:
    """Run the dev Procfile (what `make dev` runs) on free ports with a private NAS and emulator."""
    ports = {service: free_port() for service in SERVICES}
    emulator = free_port()
    nas = tmp_path / "nas"
    nas.mkdir()
    env_file = tmp_path / "stack.env"
    dev_env = {
        k: v
        for k, v in (
            line.split("=", 1)
            for line in (REPO / "dev.env").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
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
    process = subprocess.Popen(  # noqa: S603
        [str(REPO / ".venv/bin/honcho"), "-e", str(env_file), "-f", str(REPO / "Procfile"), "start"],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
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
        ["/bin/ps", "-o", "pid=,args=", "-s", str(stack.process.pid)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]
