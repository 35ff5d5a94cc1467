"""Every service has the same rooms, named the same way (README "Code layout"; STYLE.md).

``__main__`` builds the settings and starts; ``app`` wires (no routes); ``settings``; ``api`` holds the routes on a
module-level ``APIRouter``; ``handlers`` the message handlers, in the services that consume a queue; ``service`` the
application layer; ``domain/`` pure logic without I/O. Background work goes through the runtime's one periodic
helper, never a loop of a service's own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {path.parents[2].name: path for path in sorted(ROOT.glob("services/*/src/seqferry_*/__init__.py"))}
SERVICES = sorted(PACKAGES)
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket", "route"}
# What the domain may not import: I/O, concurrency, AWS, HTTP, the runtime's transport and stores.
DOMAIN_FORBIDDEN = {
    "asyncio", "os", "shutil", "subprocess", "socket", "sqlite3", "tempfile", "threading", "io",
    "boto3", "botocore", "aiobotocore", "awscrt", "aiohttp", "httpx", "fastapi", "starlette", "uvicorn",
    "seqferry_shared.aws", "seqferry_shared.runtime", "seqferry_shared.messaging", "seqferry_shared.state.records",
    "seqferry_shared.idempotency", "seqferry_shared.http",
}  # fmt: skip


def package(service: str) -> Path:
    return PACKAGES[service].parent


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imported(module: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in DOMAIN_FORBIDDEN)


def test_there_are_five_services():
    assert SERVICES == ["adhoc", "executor", "notifier", "scheduler", "simulator"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_rooms(service: str):
    pkg = package(service)
    for room in ("__main__.py", "app.py", "settings.py", "api.py", "domain/__init__.py"):
        assert (pkg / room).is_file(), f"{service}: no {room}"
    assert (pkg / "service.py").is_file() or (pkg / "service" / "__init__.py").is_file(), (
        f"{service}: the application layer is not service.py (or a service/ package)"
    )
    for other_name in ("orchestrator.py", "manager.py", "domain/manager.py", f"{service}.py"):
        assert not (pkg / other_name).exists(), f"{service}: application layer under another name: {other_name}"


@pytest.mark.parametrize("service", SERVICES)
def test_handlers_are_where_messages_are_consumed(service: str):
    # GIVEN whether the service's app consumes a queue
    consumes = "add_consumer(" in (package(service) / "app.py").read_text()
    handlers = package(service) / "handlers.py"
    # THEN it has handlers.py exactly then, and the handlers build a Router
    assert handlers.is_file() == consumes, f"{service}: consumes a queue: {consumes}; handlers.py: {handlers.exists()}"
    if consumes:
        assert "Router()" in handlers.read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_routes_live_on_the_api_router_and_app_only_wires(service: str):
    api = tree(package(service) / "api.py")
    routers = [
        node
        for node in api.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "router" for t in node.targets)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "APIRouter"
    ]
    assert routers, f"{service}: api.py has no module-level 'router = APIRouter(...)'"
    app = tree(package(service) / "app.py")
    routes = [
        node.lineno
        for node in ast.walk(app)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ROUTE_DECORATORS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in {"app", "router"}
    ]
    assert routes == [], f"{service}: app.py declares routes at lines {routes}"
    assert "api.router" in (package(service) / "app.py").read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_does_no_io(service: str):
    modules = sorted((package(service) / "domain").rglob("*.py"))
    found = []
    for path in modules:
        module = tree(path)
        found += [f"{path.name}: imports {name}" for name in sorted(imported(module)) if forbidden(name)]
        found += [
            f"{path.name}:{node.lineno}: calls open()"
            for node in ast.walk(module)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
        ]
        found += [
            f"{path.name}:{node.lineno}: async def {node.name}"
            for node in ast.walk(module)
            if isinstance(node, ast.AsyncFunctionDef)
        ]
    assert found == []


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_writes_a_sleep_until_stopping_loop_of_its_own(service: str):
    # A wait on a stop event with a timeout is how such loops sleep; the shared periodic helper owns it.
    hits = []
    for path in sorted(package(service).rglob("*.py")):
        for node in ast.walk(tree(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "wait_for"
                and node.args
                and isinstance(node.args[0], ast.Call)
                and isinstance(node.args[0].func, ast.Attribute)
                and node.args[0].func.attr == "wait"
            ):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert hits == []
    assert "add_loop(" not in (package(service) / "app.py").read_text()
