"""Mutation testing of the data-safety code: break one thing at a time, run the tests that defend it.

``make mutants`` runs this. Each target in ``targets.toml`` names a module, optionally the functions in it that
matter (the rest of the module is not mutated), and the tests that must kill every mutant. Mutants come from
cosmic-ray (pinned in requirements-mutants.txt) with a set of operators that change behaviour a reader would call
a bug (comparisons flipped, conditions negated, constants changed, loops skipped, exceptions swapped), applied one
at a time to a private copy of the working tree, so the checkout is never touched and an interrupted run leaves
nothing broken. The copy's sources come first on PYTHONPATH, so services started as processes by the tests run the
mutant too.

A surviving mutant is a promise no test defends, unless ``equivalent.toml`` explains why it cannot change
behaviour. The run ends non-zero when a survivor is neither killed nor explained, and writes
``var/mutants/report.md``.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "var" / "mutants"
VENV_BIN = REPO / ".venv" / "bin"

# Operators that model a plausible bug. Left out: arithmetic swaps no one writes by mistake (Add_Pow, Mul_BitXor...),
# `is`/`is not` swapped for ordering comparisons (type errors, not bugs), and VariableReplacer/Inserter (random
# names: mostly crashes that any test kills).
OPERATORS = re.compile(
    r"core/("
    r"ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_GtE|Lt_LtE|LtE_Gt|LtE_Lt|Gt_LtE|Gt_GtE|GtE_Lt|GtE_Gt|"
    r"In_NotIn|NotIn_In|Is_IsNot|IsNot_Is)"
    r"|ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Mul|Mod_FloorDiv|Pow_Mul)"
    r"|ReplaceUnaryOperator_(Delete_Not|USub_UAdd)"
    r"|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd"
    r"|ReplaceBreakWithContinue|ReplaceContinueWithBreak|ExceptionReplacer|NumberReplacer|ZeroIterationForLoop"
    r")$"
)


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    why: str = ""


@dataclass(frozen=True)
class Survivor:
    target: str
    module: str
    line: int
    operator: str
    source: str
    diff: str


def load_targets(path: Path) -> list[Target]:
    data = tomllib.loads(path.read_text())
    return [Target(**entry) for entry in data["target"]]


def load_equivalents(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return list(tomllib.loads(path.read_text()).get("equivalent", []))


def function_lines(source: str, names: list[str]) -> list[tuple[int, int]]:
    """Line ranges (inclusive) of the named functions; ``Class.method`` or a bare name, a class name for all of it."""
    tree = ast.parse(source)
    found: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                found[name] = (child.lineno, child.end_lineno or child.lineno)
                visit(child, f"{name}.")

    visit(tree, "")
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"targets.toml names functions that do not exist: {', '.join(missing)}")
    return [found[n] for n in names]


def copy_tree(destination: Path) -> None:
    """The working tree as git sees it (tracked and untracked-but-not-ignored files), plus a link to .venv."""
    if destination.exists():
        shutil.rmtree(destination)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = Path(os.fsdecode(raw))
        src = REPO / rel
        if not src.is_file() or rel.parts[0] == "var":
            continue
        dst = destination / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    (destination / ".venv").symlink_to(REPO / ".venv")


def source_roots(tree: Path) -> list[str]:
    return [str(p) for p in sorted(tree.glob("*/src")) + sorted(tree.glob("services/*/src"))]


def test_command(tree: Path, target: Target) -> list[str]:
    return [
        str(VENV_BIN / "pytest"),
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-o",
        "addopts=--strict-markers --import-mode=importlib",
        *target.tests,
    ]


def env_for(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(source_roots(tree))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant's bytecode must never outlive it
    return env


def baseline(tree: Path, target: Target) -> float:
    started = time.monotonic()
    result = subprocess.run(test_command(tree, target), cwd=tree, env=env_for(tree), capture_output=True, text=True)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{target.name}: its tests fail without any mutation:\n{result.stdout[-3000:]}")
    return took


def run_target(target: Target, slot: int, log: list[str]) -> tuple[Target, list[Survivor], dict[str, int]]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    tree = WORK / f"tree-{slot}"
    copy_tree(tree)
    module = tree / target.module
    took = baseline(tree, target)
    timeout = max(30.0, took * 4 + 10)
    config = WORK / f"{target.name}.toml"
    session = WORK / f"{target.name}.sqlite"
    session.unlink(missing_ok=True)
    command = " ".join(_quote(part) for part in test_command(tree, target))
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {_toml_str(command)}\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
    )
    env = env_for(tree)
    subprocess.run([str(VENV_BIN / "cosmic-ray"), "init", str(config), str(session)], cwd=tree, env=env, check=True)
    ranges = function_lines(module.read_text(), target.functions) if target.functions else None
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            mutation = item.mutations[0]
            line = mutation.start_pos[0]
            wanted = OPERATORS.match(mutation.operator_name) and (
                ranges is None or any(start <= line <= end for start, end in ranges)
            )
            if not wanted:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not selected"))
        pending = db.num_work_items - db.num_results
    log.append(f"{target.name}: {pending} mutants, tests take {took:.1f} s each (timeout {timeout:.0f} s)")
    print(log[-1], flush=True)
    subprocess.run([str(VENV_BIN / "cosmic-ray"), "exec", str(config), str(session)], cwd=tree, env=env, check=True)
    lines = module.read_text().splitlines()
    survivors: list[Survivor] = []
    counts = {"killed": 0, "survived": 0, "timeout": 0, "incompetent": 0}
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            if result.worker_outcome == WorkerOutcome.ABNORMAL:
                counts["timeout"] += 1  # a mutant that hangs the tests is caught by their time limit
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts["survived"] += 1
                mutation = item.mutations[0]
                line = mutation.start_pos[0]
                survivors.append(
                    Survivor(
                        target.name,
                        target.module,
                        line,
                        mutation.operator_name.removeprefix("core/"),
                        lines[line - 1].strip(),
                        result.diff or "",
                    )
                )
            elif result.test_outcome == TestOutcome.INCOMPETENT:
                counts["incompetent"] += 1
            else:
                counts["killed"] += 1
    return target, survivors, counts


def explained(survivor: Survivor, equivalents: list[dict[str, str]]) -> str | None:
    for entry in equivalents:
        if (
            entry["module"] == survivor.module
            and entry["operator"] == survivor.operator
            and entry["source"].strip() == survivor.source
        ):
            return entry["reason"]
    return None


def _quote(part: str) -> str:
    return part if re.fullmatch(r"[\w@%+=:,./-]+", part) else "'" + part.replace("'", "'\\''") + "'"


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="targets run at once, each in its own copy of the tree")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args()
    here = Path(__file__).parent
    targets = load_targets(here / "targets.toml")
    if args.list:
        for target in targets:
            print(f"{target.name:24} {target.module}  ({target.why})")
        return 0
    if args.names:
        unknown = set(args.names) - {t.name for t in targets}
        if unknown:
            parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t.name in args.names]
    equivalents = load_equivalents(here / "equivalent.toml")
    WORK.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    results = []
    slots = list(range(max(1, args.jobs)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = {}
        queue = list(targets)
        free = list(slots)
        while queue or futures:
            while queue and free:
                slot = free.pop()
                futures[pool.submit(run_target, queue.pop(0), slot, log)] = slot
            done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                free.append(futures.pop(future))
                results.append(future.result())
    report = ["# Mutation testing of the data-safety code", "", "| target | killed | timed out | survived | explained |"]
    report.append("|---|---|---|---|---|")
    unexplained: list[Survivor] = []
    for target, survivors, counts in sorted(results, key=lambda r: r[0].name):
        reasons = [explained(s, equivalents) for s in survivors]
        report.append(
            f"| {target.name} | {counts['killed']} | {counts['timeout']} | {counts['survived']} "
            f"| {sum(r is not None for r in reasons)} |"
        )
        unexplained += [s for s, r in zip(survivors, reasons, strict=True) if r is None]
    report += ["", "## Survivors no test kills and no note explains", ""]
    report += [f"- `{s.module}:{s.line}` {s.operator}: `{s.source}`\n\n```diff\n{s.diff}\n```" for s in unexplained]
    report += ["", *log]
    (WORK / "report.md").write_text("\n".join(report) + "\n")
    print("\n".join(report[: 4 + len(results)]))
    for s in unexplained:
        print(f"SURVIVED {s.module}:{s.line} {s.operator}: {s.source}")
    print(f"report: {WORK / 'report.md'}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
