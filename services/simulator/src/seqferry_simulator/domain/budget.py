"""The disk budget: when the simulator's folders exceed it, finished ones go, oldest first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from seqferry_simulator.domain.records import RunRecord, RunState

DELETABLE = (RunState.COMPLETE, RunState.ABANDONED, RunState.FAILED)


@dataclass(frozen=True, slots=True)
class Usage:
    record: RunRecord
    bytes: int

    @property
    def finished_at(self) -> datetime:
        return self.record.completed_at or self.record.started_at


def to_delete(usages: Iterable[Usage], budget_bytes: int) -> list[Usage]:
    """The finished folders to remove, oldest first, until what remains fits in the budget.

    Running runs count towards the total but are never chosen; if they alone exceed the budget the list
    holds every finished folder and the total stays over budget until they finish.
    """
    usages = list(usages)
    total = sum(u.bytes for u in usages)
    chosen: list[Usage] = []
    for usage in sorted((u for u in usages if u.record.state in DELETABLE), key=lambda u: u.finished_at):
        if total <= budget_bytes:
            break
        chosen.append(usage)
        total -= usage.bytes
    return chosen
