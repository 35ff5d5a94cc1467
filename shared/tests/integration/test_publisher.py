"""The real publisher against the moto server: large events are split by size as well as by count, none lost."""

from typing import Any

from seqferry_shared.events import TransferRequested
from seqferry_shared.messaging.publisher import MAX_BATCH, MAX_ENTRY_BYTES, EventPublisher, entry_size
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.testing.bustap import BusTap


class RecordingEvents:
    """The real EventBridge client; every PutEvents request it sends is noted on the way.

    moto checks the count of entries per request (10) but not EventBridge's 256 KiB request limit, so the test
    measures each request itself.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.requests: list[list[dict[str, Any]]] = []

    async def put_events(self, **kwargs: Any) -> Any:
        self.requests.append(list(kwargs["Entries"]))
        return await self._client.put_events(**kwargs)


def large_request(n: int, size: int = 60_000) -> TransferRequested:
    path = f"/sequencers/incoming/novaseq/251125_A01934_{n:04d}_BHJF77DRX5/Data/Intensities/BaseCalls/L001/"
    includes = [f"{path}C{i}.1/" for i in range(size // (len(path) + 10))]
    return TransferRequested(request_id=f"large-{n}", includes=includes, reason="re-transfer of a whole flow cell")


async def test_ten_large_events_in_one_call_are_split_by_size_and_all_arrive(runtime: ServiceRuntime) -> None:
    # GIVEN a tap on the bus and ten events of ~60 KB each: ~600 KB, more than one PutEvents request may carry
    tap = BusTap(runtime.names.bus, sources=[TransferRequested.SOURCE])
    events = RecordingEvents(await runtime.client("events"))
    publisher = EventPublisher(events, runtime.names.bus)
    details = [large_request(n) for n in range(10)]
    total = sum(entry_size(publisher.entry(d)) for d in details)
    assert total > 2 * MAX_ENTRY_BYTES
    # WHEN they are published in one call
    await publisher.publish(*details)
    # THEN no request went over EventBridge's limits: at most 10 entries and 256 KiB each
    assert len(events.requests) >= 3
    for request in events.requests:
        assert len(request) <= MAX_BATCH
        assert sum(entry_size(e) for e in request) <= MAX_ENTRY_BYTES
    # AND every event was put once, in order, and arrived whole
    sent = [e for request in events.requests for e in request]
    assert len(sent) == 10
    seen = await tap.await_for(lambda found: len(found) >= 10, timeout_s=30)
    assert sorted(d["request_id"] for d in seen) == sorted(d.request_id for d in details)
    assert all(len(d["includes"]) == len(details[0].includes) for d in seen)


async def test_small_events_still_go_ten_to_a_request(runtime: ServiceRuntime) -> None:
    tap = BusTap(runtime.names.bus, sources=[TransferRequested.SOURCE])
    events = RecordingEvents(await runtime.client("events"))
    publisher = EventPublisher(events, runtime.names.bus)
    await publisher.publish(*(TransferRequested(request_id=f"r{n}", includes=["/x"]) for n in range(23)))
    assert [len(r) for r in events.requests] == [10, 10, 3]
    seen = await tap.await_for(lambda found: len(found) >= 23, timeout_s=30)
    assert len({d["request_id"] for d in seen}) == 23
