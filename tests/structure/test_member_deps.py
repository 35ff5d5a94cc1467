"""``make deps`` fails when a member imports a package it does not declare (tools/member_deps.py, deptry).

Checked on a copy of a real member (the scheduler) that is then broken in one way at a time: the check passes on
the copy as it is, and names the package once its code or its tests import something undeclared.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("seqferry_member_deps", ROOT / "tools" / "member_deps.py")
assert _SPEC is not None
assert _SPEC.loader is not None
member_deps = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(member_deps)


@pytest.fixture
def member(tmp_path: Path) -> Path:
    copy = tmp_path / "scheduler"
    source = ROOT / "services" / "scheduler"
    copy.mkdir()
    shutil.copy(source / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(source / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copytree(source / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def add_import(module: Path, statement: str) -> None:
    module.write_text(module.read_text() + f"\n{statement}  # noqa\n")


def test_a_member_that_declares_its_imports_passes(member: Path) -> None:
    assert member_deps.check(member) == []


def test_code_importing_a_package_it_only_gets_through_another_fails(member: Path) -> None:
    # GIVEN the scheduler's code importing aiohttp, installed here (the notifier declares it) but not declared
    add_import(member / "src" / "seqferry_scheduler" / "ticks.py", "import aiohttp")
    # THEN the check fails, naming the module and the package
    [failure] = member_deps.check(member)
    assert "ticks.py" in failure
    assert "'aiohttp'" in failure


def test_code_importing_a_test_only_package_fails(member: Path) -> None:
    # GIVEN the scheduler's code importing pytest, which only its test extra declares
    add_import(member / "src" / "seqferry_scheduler" / "service.py", "import pytest")
    [failure] = member_deps.check(member)
    assert "DEP004" in failure
    assert "'pytest'" in failure


def test_tests_importing_an_undeclared_package_fail(member: Path) -> None:
    # GIVEN a scheduler test importing hypothesis, which neither its dependencies nor its test extra declare
    test = next((member / "tests" / "unit").glob("test_*.py"))
    add_import(test, "import hypothesis")
    [failure] = member_deps.check(member)
    assert failure.startswith(f"{member}/tests")
    assert "'hypothesis'" in failure


def test_a_declared_dependency_nothing_imports_fails(member: Path) -> None:
    # GIVEN the scheduler declaring numpy, which none of its code imports
    pyproject = member / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tzdata",\n]', '"tzdata",\n  "numpy",\n]', 1))
    [failure] = member_deps.check(member)
    assert "DEP002" in failure
    assert "'numpy'" in failure
