"""Persistent idempotency against the moto server's DynamoDB: once per key, released on failure, claims expire."""

import asyncio
from typing import Any

import pytest

from seqferry_shared.idempotency import IdempotencyInProgressError, IdempotencyStore
from seqferry_shared.runtime import ServiceRuntime


@pytest.fixture
async def store_for(runtime: ServiceRuntime) -> Any:
    ddb = await runtime.client("dynamodb")

    def make(**options: Any) -> IdempotencyStore:
        return IdempotencyStore(ddb, runtime.names.table, **options)

    return make


async def test_a_completed_key_runs_once_and_hands_back_its_result(store_for: Any) -> None:
    store = store_for()
    async with store.guard("event-1") as claim:
        assert not claim.done
        claim.set_result({"execution": "exec-1"})
    async with store.guard("event-1") as again:
        assert again.done
        assert again.result == {"execution": "exec-1"}


async def test_a_failed_handler_releases_its_claim(store_for: Any) -> None:
    store = store_for()
    with pytest.raises(RuntimeError):
        async with store.guard("event-2"):
            raise RuntimeError("handler failed")
    async with store.guard("event-2") as retry:
        assert not retry.done


async def test_a_claim_in_progress_blocks_others_until_it_expires(store_for: Any) -> None:
    # GIVEN a worker that claimed a key and died before completing or releasing it
    store = store_for(in_progress_expiry_s=1.0)
    claim = await store.claim("event-3")
    assert not claim.done
    # WHEN another worker gets the same event meanwhile THEN it is told to come back later
    with pytest.raises(IdempotencyInProgressError):
        await store.claim("event-3")
    # AND once the claim expired, the event can run again (the crashed worker's claim does not block it forever)
    await asyncio.sleep(1.2)
    retaken = await store.claim("event-3")
    assert not retaken.done
    # AND the new claim is live: it blocks others in its turn
    with pytest.raises(IdempotencyInProgressError):
        await store.claim("event-3")
