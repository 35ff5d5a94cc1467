"""The typed record store against the moto server: compare-and-set under racing writers, listings, plain puts."""

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.state.kinds import ADHOC_REQUEST, LISTING_PK, LISTING_SK, NOTIFIER_RUN, Listing
from seqferry_shared.state.records import Filter, Records


class Counter(BaseModel):
    name: str
    count: int = 0
    at: str


def counters(ddb: Any, table: str) -> Records[Counter]:
    def attributes(c: Counter) -> dict[str, Any]:
        return {
            LISTING_PK: {"S": Listing.NOTIFIER_RUNS.value},
            LISTING_SK: {"S": f"{c.at}#{c.name}"},
            "big": {"BOOL": c.count >= 5},
        }

    return Records(ddb, table, NOTIFIER_RUN, Counter, key=lambda c: NOTIFIER_RUN.key(c.name), attributes=attributes)


async def test_racing_writers_each_apply_their_change_once(runtime: ServiceRuntime) -> None:
    records = counters(await runtime.client("dynamodb"), runtime.names.table)
    key = NOTIFIER_RUN.key("c")

    def increment(current: Counter | None) -> tuple[Counter | None, None]:
        base = current or Counter(name="c", at="2026-01-01")
        return base.model_copy(update={"count": base.count + 1}), None

    # GIVEN ten writers changing one record at the same time
    await asyncio.gather(*(records.mutate(key, increment) for _ in range(10)))
    # THEN none of their changes was lost, and the version counts every write
    stored = await records.load(key)
    assert stored is not None
    assert stored.record.count == 10
    assert stored.version == 10
    # AND a create-only save of an existing record is refused
    assert not await records.save(Counter(name="c", at="2026-01-01"), expected_version=None)


async def test_a_listing_returns_its_records_in_order_bounded_and_filtered(runtime: ServiceRuntime) -> None:
    records = counters(await runtime.client("dynamodb"), runtime.names.table)
    for n in range(8):
        assert await records.save(Counter(name=f"c{n}", count=n, at=f"2026-01-0{n + 1}"), expected_version=None)
    newest = await records.query(Listing.NOTIFIER_RUNS, limit=3)
    assert [c.name for c in newest] == ["c7", "c6", "c5"]
    between = await records.query(Listing.NOTIFIER_RUNS, lower="2026-01-02", upper="2026-01-04~", newest_first=False)
    assert [c.name for c in between] == ["c1", "c2", "c3"]
    big = await records.query(Listing.NOTIFIER_RUNS, where=Filter("big = :yes", {}, {":yes": {"BOOL": True}}))
    assert [c.name for c in big] == ["c7", "c6", "c5"]
    # A kind's store never reads another kind's listing
    with pytest.raises(ValueError, match="not listed under"):
        await records.query(Listing.EXECUTOR_EXECUTIONS)


async def test_unversioned_kinds_are_overwritten_whole(runtime: ServiceRuntime) -> None:
    ddb = await runtime.client("dynamodb")
    records = Records(ddb, runtime.names.table, ADHOC_REQUEST, Counter, key=lambda c: ADHOC_REQUEST.key(c.name))
    await records.put(Counter(name="r", count=1, at="x"))
    await records.put(Counter(name="r", count=2, at="x"))
    assert await records.get(ADHOC_REQUEST.key("r")) == Counter(name="r", count=2, at="x")
    item = (await ddb.get_item(TableName=runtime.names.table, Key=ADHOC_REQUEST.key("r").item()))["Item"]
    assert set(item) == {"pk", "sk", "record"}
    with pytest.raises(TypeError, match="not versioned"):
        await records.save(Counter(name="r", at="x"), expected_version=None)
    with pytest.raises(TypeError, match="versioned"):
        await counters(ddb, runtime.names.table).put(Counter(name="c", at="x"))
