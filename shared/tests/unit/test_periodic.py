"""Periodic work without I/O: one error policy for every service's background rounds."""

import asyncio
import logging

import pytest

from seqferry_shared.periodic import run_periodically, wait_unless_stopping


async def test_a_failing_round_is_logged_and_the_next_round_still_runs(caplog: pytest.LogCaptureFixture):
    # GIVEN work that fails on its first two rounds and stops the process on its fourth
    stopping = asyncio.Event()
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        if rounds <= 2:
            raise OSError(f"dependency down (round {rounds})")
        if rounds == 4:
            stopping.set()

    # WHEN it runs periodically
    with caplog.at_level(logging.ERROR, logger="seqferry_shared.periodic"):
        await asyncio.wait_for(run_periodically("poller", work, every=0.001, stopping=stopping), timeout=30)

    # THEN the loop survived both failures, logged each with its cause, and ended when the process stopped
    assert rounds == 4
    failures = [r for r in caplog.records if r.name == "seqferry_shared.periodic"]
    assert [r.getMessage() for r in failures] == ["poller: round failed; next round in 0.0 s"] * 2
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == [
        "dependency down (round 1)",
        "dependency down (round 2)",
    ]


async def test_a_failing_round_waits_its_interval_instead_of_spinning():
    # GIVEN work that always fails, on an hour's interval
    stopping = asyncio.Event()
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        raise RuntimeError("always")

    loop = asyncio.create_task(run_periodically("sweeper", work, every=3600, stopping=stopping))
    for _ in range(50):
        await asyncio.sleep(0)

    # THEN it ran once and waits; stopping ends the wait at once
    assert rounds == 1
    stopping.set()
    await asyncio.wait_for(loop, timeout=30)
    assert rounds == 1


async def test_cancellation_is_never_swallowed():
    stopping = asyncio.Event()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    loop = asyncio.create_task(run_periodically("worker", work, every=1, stopping=stopping))
    await started.wait()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop


async def test_the_wait_follows_a_schedule_and_ends_early_when_woken():
    # GIVEN a schedule asking for an hour's wait, and a backend that says something changed
    stopping = asyncio.Event()
    changed = asyncio.Event()
    waits: list[float] = []

    async def wake(seconds: float) -> None:
        waits.append(seconds)
        await changed.wait()

    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            stopping.set()

    loop = asyncio.create_task(run_periodically("poller", work, every=lambda: 3600.0, stopping=stopping, wake=wake))
    for _ in range(50):
        await asyncio.sleep(0)
    assert rounds == 1

    # WHEN the backend wakes it
    changed.set()
    await asyncio.wait_for(loop, timeout=30)

    # THEN the next round ran without waiting out the hour, and the wait asked was the schedule's
    assert rounds == 2
    assert waits == [3600.0]


async def test_a_wait_returns_whether_the_process_is_stopping():
    stopping = asyncio.Event()
    assert await wait_unless_stopping(stopping, 0) is False
    assert await wait_unless_stopping(stopping, 0.001) is False
    stopping.set()
    assert await wait_unless_stopping(stopping, 3600) is True
