"""Every state-table key comes from the shared registry: no service, the CLI or a test harness spells its own.

Two services once listed their records under the same ``gsi1pk`` and the dashboard read the other's items; the
registry (``seqferry_shared.state.kinds``) proves its kinds apart, and this check keeps every key going through it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from seqferry_shared.state.kinds import KINDS, Listing

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted(ROOT.glob("services/*/src")),
    ROOT / "cli" / "src",
    ROOT / "shared" / "src",
    ROOT / "tests" / "faults",
]
REGISTRY = ROOT / "shared" / "src" / "seqferry_shared" / "state" / "kinds.py"
PREFIXES = sorted({p for kind in KINDS for p in kind.pk_prefixes})
LISTINGS = {listing.value for listing in Listing}


def literals(path: Path) -> set[tuple[int, str]]:
    """String literals (f-strings' literal parts among them), with their line numbers."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add((node.lineno, node.value))
    return found


def spelled_keys(path: Path) -> list[tuple[int, str]]:
    return sorted(
        (line, text)
        for line, text in literals(path)
        if text in LISTINGS or any(text.startswith(prefix) for prefix in PREFIXES)
    )


def test_no_source_spells_a_key_prefix_or_listing_key_of_its_own() -> None:
    # GIVEN every module of the services, the CLI, the shared runtime and the fault harness
    modules = [p for root in SOURCES for p in root.rglob("*.py") if p != REGISTRY]
    assert len(modules) > 100
    # THEN none writes a key prefix or listing key as a literal: they come from the registry
    hits = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in modules for line, text in spelled_keys(path)]
    assert hits == []


def test_the_check_finds_a_spelled_key(tmp_path: Path) -> None:
    module = tmp_path / "store.py"
    module.write_text('def key(run_id):\n    return {"pk": {"S": f"run#{run_id}"}, "gsi1pk": "notifier#runs"}\n')
    assert spelled_keys(module) == [(2, "notifier#runs"), (2, "run#")]
