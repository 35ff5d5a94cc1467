"""The command line speaks only the public surface: it never imports a service package, nor depends on one."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

CLI = Path(__file__).resolve().parents[2]
SERVICES = ("seqferry_scheduler", "seqferry_executor", "seqferry_adhoc", "seqferry_simulator", "seqferry_notifier")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_source_file_imports_a_service():
    # GIVEN every module of the CLI, imports at any depth (also inside functions)
    offenders = {
        str(path.relative_to(CLI)): sorted(m for m in imported_modules(path) if m.split(".")[0] in SERVICES)
        for path in (CLI / "src").rglob("*.py")
    }
    # THEN none names a service package
    assert {k: v for k, v in offenders.items() if v} == {}


def test_loading_every_command_loads_no_service_module():
    # WHEN a fresh interpreter imports every CLI module and builds the whole command tree
    script = """
import importlib, pkgutil, sys
import seqferry_cli
import typer
for info in pkgutil.walk_packages(seqferry_cli.__path__, "seqferry_cli."):
    importlib.import_module(info.name)
from seqferry_cli.app import build_app
typer.main.get_command(build_app())
print("\\n".join(sorted(sys.modules)))
"""
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    # THEN no service module is among the loaded ones (the CLI works where no service is installed)
    assert [m for m in loaded if m.split(".")[0] in SERVICES] == []
    assert "seqferry_cli.commands.doctor" in loaded


def test_the_package_depends_on_no_service():
    project = tomllib.loads((CLI / "pyproject.toml").read_text())["project"]
    dependencies = {d.split("[")[0].split("=")[0].split(">")[0].strip() for d in project["dependencies"]}
    assert not dependencies & {s.replace("_", "-") for s in SERVICES}
    assert "seqferry-shared" in dependencies
    assert project["scripts"] == {"seqferry": "seqferry_cli.__main__:main"}
