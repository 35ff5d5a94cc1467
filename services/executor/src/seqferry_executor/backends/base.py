"""The interface every transfer backend implements.

The executor's orchestration (idempotency, coalescing, persistence, polling, event emission) is the same for
every backend; a backend only starts executions and reports their status in DataSync's vocabulary.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from seqferry_shared.events.models import Counters, ErrorInfo, FileProblem, RunSummary, TransferState


class BackendError(Exception):
    """A backend could not do what was asked; ``code`` is DataSync-style (e.g. InvalidRequestException)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(slots=True)
class ExecutionStatus:
    state: TransferState
    counters: Counters = field(default_factory=Counters)
    runs: list[RunSummary] = field(default_factory=list)
    error: ErrorInfo | None = None
    problems: list[FileProblem] = field(default_factory=list)


class TransferBackend(ABC):
    name: ClassVar[str]

    @abstractmethod
    async def start(self, task: str, includes: Sequence[str]) -> str:
        """Start one execution of ``task`` restricted to ``includes``; return the execution id.

        ``includes`` already fit one filter value (the executor splits longer lists).
        """

    @abstractmethod
    async def describe(self, execution_id: str) -> ExecutionStatus:
        """Current status of an execution (the source of truth for state and counters)."""

    async def changed(self, timeout_s: float) -> None:
        """Return once an execution may have changed state, at the latest after ``timeout_s``. A backend that learns
        of its executions' ends itself (the local engine) returns as soon as one ends, so the next queued part starts
        at once; others (DataSync) are simply polled."""
        await asyncio.sleep(timeout_s)

    async def resume(self, execution_id: str, task: str, includes: Sequence[str]) -> None:  # noqa: B027
        """Re-attach to an execution found non-terminal after a restart (DataSync: nothing to do)."""

    async def close(self) -> None:  # noqa: B027
        """Release clients, stop background work."""
