"""Mutation testing of the data-safety code: break one thing at a time, run the tests that defend it.

``make mutants`` runs this. Each target in ``targets.toml`` names a module, optionally the functions in it that
matter (the rest of the module is not mutated), and the tests that must kill every mutant. Mutants come from
cosmic-ray (pinned in constraints.txt, listed in requirements.txt next to this file) with a set of operators that
change behaviour a reader would call a bug (comparisons flipped, conditions negated, constants changed, loops
skipped, exceptions swapped), applied one at a time to a private copy of the working tree, so the checkout is never
touched and an interrupted run leaves nothing broken. The copy's sources come first on PYTHONPATH, so services
started as processes by the tests run the mutant too. Targets run one after the other.

A surviving mutant is a promise no test defends, unless ``equivalent.toml`` explains why it cannot change
behaviour. Each target's result is kept in ``var/mutants/results/``; the report (``--report``, by default
``var/mutants/report.md``; ``make mutants`` writes ``docs/mutation.md``) is rendered from the latest result of
every target; a target with no result here (results are not in git: another clone ran it) keeps what the report
being replaced says of it. The run ends non-zero when a survivor is neither killed nor explained.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WORK = REPO / "var" / "mutants"
RESULTS = WORK / "results"
VENV_BIN = REPO / ".venv" / "bin"
DEFERRED = "left for --resume"

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
    module: str
    function: str
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


def enclosing(source: str, line: int) -> str:
    """The qualified name of the innermost function or class holding ``line`` (empty at module level)."""
    best, best_span = "", None

    def visit(node: ast.AST, prefix: str) -> None:
        nonlocal best, best_span
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                end = child.end_lineno or child.lineno
                if child.lineno <= line <= end and (best_span is None or end - child.lineno <= best_span):
                    best, best_span = name, end - child.lineno
                visit(child, f"{name}.")

    visit(ast.parse(source), "")
    return best


def signature_lines(source: str) -> set[int]:
    """Lines of ``def`` signatures (parameters, defaults, annotations): mutating them is noise, not a bug."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            lines.update(range(node.lineno, node.body[0].lineno))
    return lines


def binary_operator_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where real binary operators sit (between their operands): the parser also offers ``*`` in ``f(*, a)``."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp):
            left_end = (node.left.end_lineno or 0, node.left.end_col_offset or 0)
            spans.append((left_end, (node.right.lineno, node.right.col_offset)))
        elif isinstance(node, ast.AugAssign):
            target_end = (node.target.end_lineno or 0, node.target.end_col_offset or 0)
            spans.append((target_end, (node.value.lineno, node.value.col_offset)))
    return spans


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


def test_command(target: Target) -> list[str]:
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
    result = subprocess.run(
        test_command(target), check=False, cwd=tree, env=env_for(tree), capture_output=True, text=True
    )
    took = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{target.name}: its tests fail without any mutation:\n{result.stdout[-3000:]}")
    return took


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def recheckable(target: Target) -> dict[str, Any] | None:
    """What the target's last session ran, if it can be continued: same module source, same selection.

    Returns the last result (``{}`` when the session was stopped before it produced one), or None.
    """
    session, kept = WORK / f"{target.name}.sqlite", WORK / f"{target.name}.source.json"
    if not session.exists() or not kept.exists():
        return None
    started_from = json.loads(kept.read_text())
    if started_from != {"module": (REPO / target.module).read_text(), "functions": target.functions}:
        return None
    path = RESULTS / f"{target.name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def run_target(
    target: Target,
    previous: dict[str, Any] | None = None,
    *,
    survivors: bool = False,
    resume: bool = False,
    budget_s: float | None = None,
) -> dict[str, Any]:
    """Mutate ``target``'s functions one at a time and run its tests against each mutant; the result as a dict.

    With ``previous`` (see :func:`recheckable`), the last session goes on: with ``resume`` the mutants it did not
    run yet, with ``survivors`` those that survived it. ``budget_s`` stops the run after that long; what is left
    is counted as not run (and runs when the session goes on).
    """
    started = time.monotonic()
    tree = WORK / f"tree-{target.name}"
    copy_tree(tree)
    module = tree / target.module
    source = module.read_text()
    took = baseline(tree, target)
    timeout = max(30.0, took * 4 + 10)
    config = WORK / f"{target.name}.toml"
    session = WORK / f"{target.name}.sqlite"
    if previous is not None:
        text = re.sub(r"(?m)^timeout = .*$", f"timeout = {timeout:.0f}", config.read_text())
        text = re.sub(r"(?m)^module-path = .*$", lambda _: f"module-path = {_toml_str(str(module))}", text)
        command = " ".join(_quote(part) for part in test_command(target))  # the tests as targets.toml has them now
        config.write_text(re.sub(r"(?m)^test-command = .*$", lambda _: f"test-command = {_toml_str(command)}", text))
        with sqlite3.connect(session) as db:
            db.execute("UPDATE mutation_specs SET module_path = ?", (str(module),))  # this run's copy of the tree
            if not resume:  # only the survivors: what was never run stays for a later --resume
                db.execute(
                    "INSERT INTO work_results (job_id, worker_outcome, output) SELECT job_id, 'SKIPPED', ? "
                    "FROM work_items WHERE job_id NOT IN (SELECT job_id FROM work_results)",
                    (DEFERRED,),
                )
            again = db.execute("DELETE FROM work_results WHERE test_outcome = 'INCOMPETENT'").rowcount  # not applied
            if survivors:  # those equivalent.toml explains would only survive again
                equivalents, lines = load_equivalents(HERE / "equivalent.toml"), source.splitlines()
                rows = db.execute(
                    "SELECT r.job_id, m.start_pos_row, m.operator_name, r.diff FROM work_results r "
                    "JOIN mutation_specs m ON m.job_id = r.job_id WHERE r.test_outcome = 'SURVIVED'"
                ).fetchall()
                for job_id, line, operator, diff in rows:
                    survivor = Survivor(
                        target.module,
                        enclosing(source, line),
                        line,
                        operator.removeprefix("core/"),
                        lines[line - 1].strip(),
                        _short_diff(diff),
                    )
                    if explained(survivor, equivalents) is None:
                        again += db.execute("DELETE FROM work_results WHERE job_id = ?", (job_id,)).rowcount
            left = db.execute(
                "SELECT COUNT(*) FROM work_items WHERE job_id NOT IN (SELECT job_id FROM work_results)"
            ).fetchone()[0]
        print(f"{target.name}: {left} mutants to run ({again} that survived), its tests take {took:.1f} s", flush=True)
        return finish(target, tree, source, config, session, took, started, previous, budget_s)
    session.unlink(missing_ok=True)
    (WORK / f"{target.name}.source.json").write_text(json.dumps({"module": source, "functions": target.functions}))
    command = " ".join(_quote(part) for part in test_command(target))
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {_toml_str(command)}\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
    )
    env = env_for(tree)
    subprocess.run(
        [str(VENV_BIN / "cosmic-ray"), "init", str(config), str(session)],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ranges = function_lines(source, target.functions) if target.functions else None
    operators = binary_operator_spans(source)
    signatures = signature_lines(source)
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            mutation = item.mutations[0]
            line = mutation.start_pos[0]
            wanted = (
                OPERATORS.match(mutation.operator_name)
                and line not in signatures
                and (ranges is None or any(start <= line <= end for start, end in ranges))
            )
            if wanted and "ReplaceBinaryOperator" in mutation.operator_name:
                wanted = any(lo <= tuple(mutation.start_pos) < hi for lo, hi in operators)
            if not wanted:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not selected"))
        pending = db.num_work_items - db.num_results
    print(f"{target.name}: {pending} mutants, its tests take {took:.1f} s (timeout {timeout:.0f} s)", flush=True)
    return finish(target, tree, source, config, session, took, started, None, budget_s)


def execute(command: list[str], tree: Path, env: dict[str, str], budget_s: float | None) -> None:
    """Run cosmic-ray; past ``budget_s``, stop it and the tests it is running (each in its own session)."""
    with subprocess.Popen(command, cwd=tree, env=env, start_new_session=True) as process:
        try:
            status = process.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            children = subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
            for pid in [process.pid, *map(int, children)]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            process.wait()
            print(f"time budget of {budget_s / 60:.0f} min used up: the mutants left are not run", flush=True)
            return
    if status != 0:
        raise SystemExit(f"cosmic-ray exec failed ({status})")


def finish(
    target: Target,
    tree: Path,
    source: str,
    config: Path,
    session: Path,
    took: float,
    started: float,
    previous: dict[str, Any] | None,
    budget_s: float | None,
) -> dict[str, Any]:
    """Run the pending mutants of ``session`` (until ``budget_s``), then tally every mutant of the target."""
    env = env_for(tree)
    execute([str(VENV_BIN / "cosmic-ray"), "exec", str(config), str(session)], tree, env, budget_s)
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE output = ?", (DEFERRED,))
    lines = source.splitlines()
    survivors: list[Survivor] = []
    counts = {"mutants": 0, "killed": 0, "timeout": 0, "survived": 0, "incompetent": 0, "not_run": 0}
    with use_db(str(session), WorkDB.Mode.open) as db:
        counts["not_run"] = db.num_work_items - db.num_results
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            counts["mutants"] += 1
            if result.worker_outcome == WorkerOutcome.ABNORMAL or (result.output or "").strip() == "timeout":
                counts["timeout"] += 1  # a mutant that hangs the tests is caught by their time limit
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts["survived"] += 1
                mutation = item.mutations[0]
                line = mutation.start_pos[0]
                diff = _short_diff(result.diff)
                survivors.append(
                    Survivor(
                        target.module,
                        enclosing(source, line),
                        line,
                        mutation.operator_name.removeprefix("core/"),
                        lines[line - 1].strip(),
                        diff,
                    )
                )
            elif result.test_outcome == TestOutcome.INCOMPETENT:
                counts["incompetent"] += 1
            else:
                counts["killed"] += 1
    shutil.rmtree(tree)
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/mutation.md"))
    seconds = time.monotonic() - started
    return {
        "target": asdict(target),
        "commit": git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "baseline_s": round(took, 1),
        "seconds": round(seconds + (previous.get("seconds", 0) if previous else 0), 1),
        "rechecks": (previous.get("rechecks", 0) + 1) if previous else 0,
        "counts": counts,
        "survivors": [asdict(s) for s in sorted(survivors, key=lambda s: (s.line, s.operator))],
    }


def mutated_line(survivor: Survivor) -> str:
    """The mutated source line, as the mutant has it (without white space: the mutator adds some)."""
    added = ["".join(d[1:].split()) for d in survivor.diff.splitlines() if d.startswith("+")]
    return added[0] if added else ""


def explained(survivor: Survivor, equivalents: list[dict[str, str]]) -> str | None:
    for entry in equivalents:
        if (
            entry["module"] == survivor.module
            and entry.get("function", survivor.function) == survivor.function
            and entry["operator"] == survivor.operator
            and entry["source"].strip() == survivor.source
            and "".join(entry.get("mutant", mutated_line(survivor)).split()) == mutated_line(survivor)
        ):
            return entry["reason"]
    return None


def earlier(report: str, target: Target) -> dict[str, Any] | None:
    """What the report being replaced says of ``target``: its table row, figures, notes, equivalents, survivors.

    The kept results live in ``var/`` (not in git), so a clone or worktree has only those of the targets it ran;
    the others keep what the report it replaces measured, with their own run's commit and time.
    """
    lines = report.splitlines()
    row = next((line for line in lines if line.startswith(f"| {target.name} | ")), None)
    if row is None:
        return None
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    if len(cells) != 9 or not cells[2]:
        return None  # a target that had not run then either
    figures = {
        key: int(cells[i]) for i, key in enumerate(("mutants", "killed", "equivalent", "surviving", "not_run"), 2)
    }
    seconds = float(cells[7].removesuffix(" min")) * 60 if cells[7] else 0.0
    notes = [line for line in lines if line.startswith(f"- {target.name}: ")]
    equivalents: list[str] = []
    heading = next((i for i, line in enumerate(lines) if line.startswith(f"- **{target.name}** (")), None)
    if heading is not None:
        for line in lines[heading + 1 :]:
            if not line.startswith("  - "):
                break
            equivalents.append(line)
    survivors: list[str] = []
    block = False
    for line in lines[next((i for i, line in enumerate(lines) if line == "## Surviving mutants"), len(lines)) :]:
        if line.startswith("- `"):
            block = line.startswith(f"- `{target.module}:")
        if block:
            survivors.append(line)
    return {"row": row, "figures": figures, "seconds": seconds, "notes": notes, "equivalents": equivalents,
            "survivors": survivors}  # fmt: skip


def render(
    targets: list[Target], equivalents: list[dict[str, str]], previous: str = ""
) -> tuple[str, list[Survivor], list[str]]:
    """The report over the latest result of every target (a target without one keeps what ``previous``, the report
    being replaced, says of it); the survivors nothing explains, and those kept from ``previous``."""
    rows, details, unexplained, notes, kept_survivors = [], [], [], [], []
    kept_blocks: list[list[str]] = []
    totals = dict.fromkeys(("mutants", "killed", "equivalent", "surviving", "not_run"), 0)
    total_s = 0.0
    for target in targets:
        tests = ", ".join(f"`{t}`" for t in target.tests)
        functions = ", ".join(f"`{f}`" for f in target.functions) or "the whole module"
        details.append(f"- **{target.name}** ({target.why}): {functions}; defended by {tests}.")
        path = RESULTS / f"{target.name}.json"
        if not path.exists():
            kept = earlier(previous, target)
            if kept is None:
                rows.append(f"| {target.name} | `{target.module}` | | | | | all | | not run yet |")
                continue
            rows.append(kept["row"])
            for key, value in kept["figures"].items():
                totals[key] += value
            total_s += kept["seconds"]
            notes += kept["notes"]
            details += kept["equivalents"]
            kept_survivors += [line for line in kept["survivors"] if line.startswith("- `")]
            kept_blocks.append(kept["survivors"])
            continue
        result = json.loads(path.read_text())
        counts = result["counts"]
        survivors = [Survivor(**s) for s in result["survivors"]]
        reasons = [explained(s, equivalents) for s in survivors]
        equivalent = sum(r is not None for r in reasons)
        left = [s for s, r in zip(survivors, reasons, strict=True) if r is None]
        unexplained += left
        killed = counts["killed"] + counts["timeout"]
        not_run = counts.get("not_run", 0) + counts["incompetent"]  # a mutant that could not be applied never ran
        totals["not_run"] += not_run
        minutes = result["seconds"] / 60
        total_s += result["seconds"]
        for key, value in (("mutants", counts["mutants"] + not_run), ("killed", killed), ("equivalent", equivalent)):
            totals[key] += value
        totals["surviving"] += len(left)
        stale = "" if result["target"] == asdict(target) else " (targets.toml changed since)"
        rows.append(
            f"| {target.name} | `{target.module}` | {counts['mutants'] + not_run} | {killed} | {equivalent} "
            f"| {len(left)} | {not_run} | {minutes:.1f} min | {result['commit']}, {result['finished']}{stale} |"
        )
        if counts["timeout"]:
            notes.append(
                f"- {target.name}: {counts['timeout']} of the killed mutants hung the tests until their time limit"
            )
        if counts["incompetent"]:
            notes.append(f"- {target.name}: {counts['incompetent']} mutants could not be applied (counted as not run)")
        for survivor, reason in zip(survivors, reasons, strict=True):
            if reason is not None:
                details.append(
                    f"  - equivalent, {survivor.function or 'module'} line {survivor.line} {survivor.operator} "
                    f"`{survivor.source}`: {reason}"
                )
    lines = [
        "# Mutation testing of the data-safety code",
        "",
        f"Generated by `make mutants` (`tests/mutation/mutants.py`, cosmic-ray) on {platform.machine()}, "
        f"{os.cpu_count()} cores. Do not edit: every figure is measured.",
        "",
        "One mutant at a time (a comparison flipped, a condition negated or dropped, a constant changed, a loop "
        "skipped, an exception swapped) in the named functions; the tests that defend them must fail. *Equivalent*: "
        "the mutant survives but cannot change behaviour, with the reason in `tests/mutation/equivalent.toml`. "
        "*Surviving*: a promise no test defends. *Not run*: mutants left when the target's time budget "
        "(`--budget`) ran out; `--resume` runs them. A target not run where this report was written keeps the "
        "figures of the report it replaced, with the commit and time of its own run.",
        "",
        "| target | module | mutants | killed | equivalent | surviving | not run | time | run at |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        f"| **all** | | {totals['mutants']} | {totals['killed']} | {totals['equivalent']} | {totals['surviving']} "
        f"| {totals['not_run']} | {total_s / 60:.1f} min | |",
        "",
        *notes,
        *([""] if notes else []),
        "## Targets, their tests and the equivalent mutants",
        "",
        *details,
        "",
        "## Surviving mutants",
        "",
    ]
    if not unexplained and not kept_survivors:
        lines.append("None.")
    for s in unexplained:
        lines += [f"- `{s.module}:{s.line}` ({s.function}) {s.operator}: `{s.source}`", "", "  ```diff"]
        lines += [f"  {d}" for d in s.diff.splitlines()] + ["  ```", ""]
    for block in kept_blocks:
        lines += block
    return "\n".join(lines).rstrip() + "\n", unexplained, kept_survivors


def _short_diff(diff: str | None) -> str:
    return "\n".join(d for d in (diff or "").splitlines() if not d.startswith(("---", "+++"))).strip()


def _quote(part: str) -> str:
    return part if re.fullmatch(r"[\w@%+=:,./-]+", part) else "'" + part.replace("'", "'\\''") + "'"


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--report", type=Path, default=WORK / "report.md", help="where to write the report")
    parser.add_argument("--render", action="store_true", help="only render the report from the kept results")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="run the mutants that survived each target's last session again (after new tests)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="go on with each target's last session: run the mutants it has not run"
    )
    parser.add_argument("--budget", type=float, metavar="MIN", help="stop each target after this many minutes")
    args = parser.parse_args()
    targets = load_targets(HERE / "targets.toml")
    if args.list:
        for target in targets:
            print(f"{target.name:28} {target.module}  ({target.why})")
        return 0
    chosen = targets
    if args.names:
        unknown = set(args.names) - {t.name for t in targets}
        if unknown:
            parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
        chosen = [t for t in targets if t.name in args.names]
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.render:
        for target in chosen:
            previous = recheckable(target) if args.survivors or args.resume else None
            if (args.survivors or args.resume) and previous is None:
                print(f"{target.name}: no session to go on with (or its module or selection changed): every mutant")
            budget = args.budget * 60 if args.budget else None
            result = run_target(target, previous, survivors=args.survivors, resume=args.resume, budget_s=budget)
            (RESULTS / f"{target.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    previous = args.report.read_text() if args.report.exists() else ""
    report, unexplained, kept = render(targets, load_equivalents(HERE / "equivalent.toml"), previous)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report)
    for s in unexplained:
        print(f"SURVIVED {s.module}:{s.line} {s.operator}: {s.source}")
    for line in kept:
        print(f"SURVIVED (as the earlier report has it) {line.removeprefix('- ')}")
    print(f"report: {args.report}")
    return 1 if unexplained or kept else 0


if __name__ == "__main__":
    sys.exit(main())
