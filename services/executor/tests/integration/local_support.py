"""What the local engine's integration tests share: a counting (and intercepting) proxy in front of moto, settings
and NAS helpers. Imported as a plain module; the fixtures built on it (``proxy``, ``factory``) are in conftest.py."""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import crc32c

from seqferry_executor.backends.base import ExecutionStatus
from seqferry_executor.backends.local import LocalBackend, LocalBackendConfig
from seqferry_executor.settings import ExecutorSettings

SEQ = "/sequencers/incoming/miseq"
RUN_ID = "251125_M00123_0001_000000000-ABCDE"
RUN = f"{SEQ}/{RUN_ID}"


# -- a counting HTTP proxy in front of moto -------------------------------------------------------------------

Hook = Callable[[str, str], bool | None]  # returning False drops the request unanswered


class CountingProxy:
    """Forwards every request to moto and records (method, path?query); ``hook`` runs before forwarding
    and may drop the request (return False)."""

    def __init__(self, upstream_port: int) -> None:
        self.requests: list[tuple[str, str]] = []
        self.signed_with: list[str] = []  # the access key id of each request's SigV4 signature
        self.hook: Hook | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                proxy.requests.append((self.command, self.path))
                credential = self.headers.get("Authorization", "").partition("Credential=")[2]
                proxy.signed_with.append(credential.partition("/")[0])
                if proxy.hook is not None and proxy.hook(self.command, self.path) is False:
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "expect")}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                    length = response.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", length or str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (a killed engine)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def writes(self) -> list[tuple[str, str]]:
        """Writes to S3 (every S3 request names the bucket in its path; CloudWatch Logs calls POST to '/')."""
        return [(m, p) for m, p in self.requests if m in ("PUT", "POST", "DELETE") and not self.is_logs(p)]

    def log_calls(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if self.is_logs(p)]

    @staticmethod
    def is_logs(path: str) -> bool:
        return path == "/" or path.startswith("/?")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- helpers ----------------------------------------------------------------------------------------------------


def make_settings(tmp_path: Path, prefix: str, endpoint: str, **local: Any) -> ExecutorSettings:
    # hold_s 0: a file its instrument still writes waits only the quiet period (tests of finality set it)
    config = {"quiet_period_s": 0.2, "hold_s": 0, "index_path": tmp_path / "state" / "index.sqlite", **local}
    return ExecutorSettings(
        prefix=prefix,
        environment="test",
        aws_endpoint_url=endpoint,
        nas_root=tmp_path / "nas",
        sequencer_paths=f"{SEQ}=miseq",
        local=LocalBackendConfig(**config),
    )


def write(nas: Path, nas_path: str, data: bytes) -> Path:
    path = nas / nas_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def age(*paths: Path, seconds: float = 60) -> None:
    """Make files look written ``seconds`` ago (mtime); ctime stays now, so wait out the quiet period too."""
    old = time.time() - seconds
    for path in paths:
        os.utime(path, (old, old))


async def settle(quiet_s: float = 0.2) -> None:
    await asyncio.sleep(quiet_s + 0.1)


async def run_pass(backend: LocalBackend, includes: list[str], task: str = "t") -> ExecutionStatus:
    execution_id = await backend.start(task, includes)
    return await wait_for(backend, execution_id)


async def wait_for(backend: LocalBackend, execution_id: str, timeout_s: float = 60) -> ExecutionStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = await backend.describe(execution_id)
        if status.state.terminal:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution {execution_id} did not finish: {status}")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def crc32c_of(data: bytes) -> str:
    return b64(crc32c.crc32c(data).to_bytes(4, "big"))


def composite_crc32c(data: bytes, part_size: int) -> str:
    parts = b"".join(crc32c.crc32c(data[i : i + part_size]).to_bytes(4, "big") for i in range(0, len(data), part_size))
    return crc32c_of(parts)
