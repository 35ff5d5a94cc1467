"""Periodic work: every service's background rounds run through one loop with one error policy.

A round that raises is logged with its traceback and the next round runs at its usual time: a dependency that
fails never ends the loop, and never makes it spin. Cancellation is never swallowed. The wait between rounds
ends early when the process stops, or when ``wake`` (a backend's "something changed") returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]
Interval = float | Callable[[], float]
"""Seconds between rounds, or a function giving the wait before the next round (a clock-aligned schedule)."""
Wake = Callable[[float], Awaitable[object]]
"""Given the wait, returns when the next round is due: after that wait, or earlier if it knows better."""


async def run_periodically(
    name: str, work: Work, *, every: Interval, stopping: asyncio.Event, wake: Wake | None = None
) -> None:
    """Run ``work``, wait, again, until ``stopping`` is set."""
    while not stopping.is_set():
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: round failed; next round in %.1f s", name, _seconds(every))
        if await wait_unless_stopping(stopping, _seconds(every), wake):
            return


async def wait_unless_stopping(stopping: asyncio.Event, seconds: float, wake: Wake | None = None) -> bool:
    """Wait ``seconds`` (or until ``wake`` returns); True as soon as ``stopping`` is set."""
    if stopping.is_set():
        return True
    if seconds <= 0:
        return False
    if wake is None:
        try:
            await asyncio.wait_for(stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
    stop = asyncio.ensure_future(stopping.wait())
    woken = asyncio.ensure_future(wake(seconds))
    try:
        await asyncio.wait([stop, woken], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (stop, woken):
            waiter.cancel()
        await asyncio.gather(stop, woken, return_exceptions=True)
    return stopping.is_set()


def _seconds(every: Interval) -> float:
    return every() if callable(every) else every
