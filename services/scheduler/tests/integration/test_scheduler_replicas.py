"""Replicas against the moto server: one window per tick and task, whatever the number of replicas."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from seqferry_scheduler.app import create_app
from seqferry_scheduler.service import Scheduler, window_event_id
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_scheduler.ticks import TickClaims
from seqferry_shared.aws import ClientFactory
from seqferry_shared.messaging.publisher import EventPublisher
from seqferry_shared.periodic import run_periodically
from seqferry_shared.telemetry import Telemetry, setup_telemetry

pytestmark = pytest.mark.integration


def settings(prefix: str, **overrides: Any) -> SchedulerSettings:
    return SchedulerSettings(prefix=prefix, environment="test", **overrides)


async def test_two_replicas_over_ten_ticks_publish_ten_windows(
    resource_prefix: str, bootstrapped: dict[str, Any], tap: Any, telemetry: Telemetry
):
    # GIVEN two scheduler apps (same prefix) ticking every second
    config = settings(resource_prefix, interval="1s")
    apps = [create_app(config, telemetry=telemetry), create_app(config, telemetry=telemetry)]

    # WHEN both run until ten windows have been published
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        replicas = [app.state.scheduler for app in apps]
        await asyncio.to_thread(tap.wait_for, lambda d: len(d) >= 10)
        first_ten = sorted(d["tick"] for d in tap.details())[:10]
        await asyncio.to_thread(tap.wait_for, lambda d: max(x["tick"] for x in d) > first_ten[-1])
    details = await asyncio.to_thread(tap.details)

    # THEN each of those ten ticks was published exactly once, by one replica or the other
    ticks = Counter(d["tick"] for d in details)
    assert first_ten == list(range(first_ten[0], first_ten[0] + 10))
    assert all(ticks[t] == 1 for t in first_ten)
    assert all(d["task"] == "sequencers" for d in details)
    assert sum(r.published for r in replicas) == len(details)


async def test_replicas_racing_for_the_same_ticks_publish_each_once(
    resource_prefix: str, bootstrapped: dict[str, Any], tap: Any
):
    # GIVEN two replicas (their own clients and claim owners) and two tasks
    config = settings(resource_prefix, tasks="sequencers,archive")
    async with ClientFactory(config) as clients_a, ClientFactory(config) as clients_b:
        replicas = [
            Scheduler(
                config,
                claims=TickClaims(await c.get("dynamodb"), config.names.table, owner=name, ttl=timedelta(days=1)),
                publisher=EventPublisher(await c.get("events"), config.names.bus),
            )
            for name, c in (("a", clients_a), ("b", clients_b))
        ]
        base = 1_443_780

        # WHEN both fire the same ten ticks at the same time
        results = await asyncio.gather(*(r.fire(base + i) for i in range(10) for r in replicas))

    # THEN twenty windows (ten ticks x two tasks), each won by exactly one replica
    wins = Counter((f.task, f.tick) for fired in results for f in fired if f.published)
    assert len(wins) == 20
    assert set(wins.values()) == {1}
    details = await asyncio.to_thread(tap.wait_for, lambda d: len(d) >= 20)
    assert len(details) == 20
    assert len({d["meta"]["event_id"] for d in details}) == 20
    assert {d["meta"]["correlation_id"] for d in details if d["tick"] == base} == {
        f"window#sequencers#{base}",
        f"window#archive#{base}",
    }


async def test_a_failed_publish_gives_the_tick_back(resource_prefix: str, bootstrapped: dict[str, Any]):
    # GIVEN a replica whose bus does not exist
    config = settings(resource_prefix)
    async with ClientFactory(config) as clients:
        claims = TickClaims(await clients.get("dynamodb"), config.names.table, owner="a", ttl=timedelta(days=1))
        scheduler = Scheduler(
            config,
            claims=claims,
            publisher=EventPublisher(await clients.get("events"), f"{resource_prefix}-missing", max_attempts=1),
        )

        # WHEN it fires a tick
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            await scheduler.fire(42)

        # THEN the claim is released, so a retry can open the tick
        assert await claims.status("sequencers", 42) is None


async def test_http_preview_and_manual_tick(resource_prefix: str, bootstrapped: dict[str, Any], tap: Any):
    # GIVEN a lab in UTC+10 and a fixed clock at 08:59:30 local on 26 Nov (22:59:30 UTC on 25 Nov)
    now = datetime(2024, 11, 25, 22, 59, 30, tzinfo=UTC)
    config = settings(
        resource_prefix, lab_time_zone="Australia/Brisbane", catch_up_on_start=False, api_token="t0ken-for-tests"
    )
    # (its own metrics registry, so the counter below counts this test's windows only)
    app = create_app(config, clock=lambda: now, telemetry=setup_telemetry("scheduler-http", set_global=False))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://scheduler") as client,
    ):
        # WHEN the next window is previewed
        preview = (await client.get("/windows/next")).json()

        # THEN it is the 23:00 UTC tick, dated in the lab's zone
        assert preview["at"] == "2024-11-25T23:00:00Z"
        assert preview["window_end"] == "2024-11-26T09:00:00+10:00"
        assert preview["dates"] == ["2024-11-26", "2024-11-25", "2024-11-24"]
        assert preview["includes"][0] == "/sequencers/incoming/iseq/20241126*"
        assert preview["include_string"].endswith("|/adhoc")
        later = (await client.get("/windows/next", params={"at": "2024-12-31T23:59:00+00:00"})).json()
        assert later["dates"][0] == "2025-01-01"

        # AND a manual tick needs the bearer token, then publishes one window per task
        assert (await client.post("/ticks")).status_code == 401
        assert (await client.post("/ticks", headers={"Authorization": "Bearer wrong"})).status_code == 403
        opened = await client.post("/ticks", headers={"Authorization": "Bearer t0ken-for-tests"})
        assert opened.status_code == 200
        (window,) = opened.json()
        details = await asyncio.to_thread(tap.wait_for, lambda d: len(d) == 1)
        assert details[0]["meta"]["event_id"] == window["event_id"]
        assert details[0]["includes"] == window["includes"]
        assert details[0]["time_zone"] == "Australia/Brisbane"
        status = (await client.get("/status")).json()
        assert status["windows_published"] == 1
        metrics = (await client.get("/metrics")).text
        assert any(
            line.startswith("seqferry_windows_published") and 'task="sequencers"' in line and line.endswith(" 1.0")
            for line in metrics.splitlines()
        ), metrics


@pytest.mark.parametrize(("jump_s", "replayed"), [(1.5, True), (10.0, False)])
async def test_a_late_replica_opens_the_ticks_it_missed_up_to_a_bound(
    resource_prefix: str, bootstrapped: dict[str, Any], tap: Any, jump_s: float, replayed: bool
):
    # GIVEN a replica ticking every second whose clock jumps ahead while it waits for its first tick
    offset = [timedelta(0)]
    config = settings(resource_prefix, interval="1s", catch_up_on_start=False)
    async with ClientFactory(config) as clients:
        scheduler = Scheduler(
            config,
            claims=TickClaims(await clients.get("dynamodb"), config.names.table, owner="a", ttl=timedelta(days=1)),
            publisher=EventPublisher(await clients.get("events"), config.names.bus),
            clock=lambda: datetime.now(UTC) + offset[0],
        )
        # (started 0.2 s into a second, so the jump lands while the loop waits for the next boundary)
        await asyncio.sleep((0.2 - time.time()) % 1.0)
        first, _ = scheduler.next_tick()
        stopping = asyncio.Event()
        loop = asyncio.create_task(
            run_periodically("ticker", scheduler.tick_if_due, every=scheduler.until_next_tick, stopping=stopping)
        )
        await asyncio.sleep(0.1)
        offset[0] = timedelta(seconds=jump_s)

        # WHEN it wakes up behind and runs a little longer
        details = await asyncio.to_thread(tap.wait_for, lambda d: len(d) >= 3)
        stopping.set()
        await loop

    # THEN a short lag is caught up tick by tick (none skipped); a long one jumps ahead without a storm
    ticks = sorted(d["tick"] for d in details)
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    if replayed:
        assert ticks[0] == first
    else:
        assert ticks[0] >= first + 9


async def test_a_tick_claimed_by_a_replica_that_died_before_publishing_is_opened_by_another(
    resource_prefix: str, bootstrapped: dict[str, Any], tap: Any
):
    # GIVEN replica "dead" claimed the coming tick and was killed before publishing its window
    config = settings(resource_prefix, interval="1s", claim_timeout="2s", catch_up_on_start=False)
    async with ClientFactory(config) as clients:
        ddb = await clients.get("dynamodb")
        dead = TickClaims(ddb, config.names.table, owner="dead", ttl=timedelta(days=1))
        survivor = Scheduler(
            config,
            claims=TickClaims(ddb, config.names.table, owner="survivor", ttl=timedelta(days=1)),
            publisher=EventPublisher(await clients.get("events"), config.names.bus),
        )
        held, instant = survivor.next_tick()
        event_id = window_event_id(resource_prefix, "sequencers", held)
        assert await dead.claim("sequencers", held, event_id=str(event_id), window_end=instant)

        # WHEN the survivor ticks on (it finds that tick held and goes on with the next ones)
        stopping = asyncio.Event()
        loop = asyncio.create_task(
            run_periodically("ticker", survivor.tick_if_due, every=survivor.until_next_tick, stopping=stopping)
        )
        try:
            details = await asyncio.to_thread(tap.wait_for, lambda d: held in {x["tick"] for x in d}, 30)
        finally:
            stopping.set()
            await loop
        status = await dead.status("sequencers", held)

    # THEN the held tick is opened once the claim is older than claim_timeout, with the window's own event id,
    # and marked published; no tick after it was skipped
    copies = [d for d in details if d["tick"] == held]
    assert len(copies) == 1
    assert copies[0]["meta"]["event_id"] == str(event_id)
    assert status is not None
    assert status["status"] == "published"
    ticks = sorted({d["tick"] for d in details})
    assert ticks == list(range(held, ticks[-1] + 1))


async def test_a_published_tick_is_never_taken_over(resource_prefix: str, bootstrapped: dict[str, Any]):
    # GIVEN a tick published by one replica long ago (claim_timeout of zero)
    config = settings(resource_prefix, claim_timeout="0s")
    async with ClientFactory(config) as clients:
        ddb = await clients.get("dynamodb")
        claims = TickClaims(ddb, config.names.table, owner="other", ttl=timedelta(days=1))
        assert await claims.claim("sequencers", 7, event_id="e", window_end=datetime.now(UTC))
        await claims.mark_published("sequencers", 7)
        mine = TickClaims(ddb, config.names.table, owner="mine", ttl=timedelta(days=1))
        # WHEN another replica tries to take it over
        taken = await mine.claim(
            "sequencers", 7, event_id="e", window_end=datetime.now(UTC), abandoned_after=timedelta(0)
        )
        # THEN it is not, and a claim still fresh is not either
        assert not taken
        assert await claims.claim("sequencers", 8, event_id="e", window_end=datetime.now(UTC))
        assert not await mine.claim(
            "sequencers", 8, event_id="e", window_end=datetime.now(UTC), abandoned_after=timedelta(hours=1)
        )
