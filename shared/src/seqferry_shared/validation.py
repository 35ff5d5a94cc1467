"""Validation of what seqferry is asked to transfer: ``Transfer Requested`` and ``Transfer Window Opened``.

The executor checks both on arrival (the bus takes events from anyone with ``events:PutEvents``); the ``seqferry``
command line runs the same check before it publishes, so a bad path fails on the caller's terminal with the message
the executor would have recorded. A request is accepted whole or rejected whole: a partial transfer would look like
success to the caller. The reason names every bad pattern (escaped, bounded) and what is wrong with it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from seqferry_shared.patterns import PatternError, escape, validate_pattern

MAX_REASONS = 20
TASK_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Accepted:
    task: str
    includes: tuple[str, ...]
    """Validated patterns, first occurrence of each kept, in the caller's order."""


@dataclass(frozen=True, slots=True)
class Rejected:
    task: str
    reasons: tuple[str, ...]

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


Verdict = Accepted | Rejected


def validate_includes(includes: Sequence[str], roots: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (valid patterns without repeats, reasons for the invalid ones)."""
    valid: list[str] = []
    reasons: list[str] = []
    for position, pattern in enumerate(includes, start=1):
        try:
            validate_pattern(pattern, roots)
        except PatternError as exc:
            reasons.append(f"include #{position} '{escape(pattern)}': {exc.reason}")
            continue
        if pattern not in valid:
            valid.append(pattern)
    if len(reasons) > MAX_REASONS:
        reasons = [*reasons[:MAX_REASONS], f"... and {len(reasons) - MAX_REASONS} more invalid include(s)"]
    return tuple(valid), tuple(reasons)


def validate_transfer(
    *,
    task: str | None,
    includes: Sequence[str],
    roots: Sequence[str],
    default_task: str,
    known_tasks: Collection[str] | None,
) -> Verdict:
    """Check the task and every include pattern; ``known_tasks`` None means the backend accepts any task name."""
    chosen = task or default_task
    reasons: list[str] = []
    if not TASK_NAME.match(chosen):
        reasons.append(f"task name '{escape(chosen, 128)}': use 1 to 128 letters, digits, '.', '_' or '-'")
    elif known_tasks is not None and chosen not in known_tasks:
        known = ", ".join(sorted(known_tasks)) or "none"
        reasons.append(f"unknown task '{escape(chosen, 128)}' (configured: {known})")
    valid, bad = validate_includes(includes, roots)
    reasons.extend(bad)
    if not includes:
        reasons.append("no include patterns")
    if reasons:
        return Rejected(task=chosen, reasons=tuple(reasons))
    return Accepted(task=chosen, includes=valid)
