from typing import Any

import pytest

from seqferry_shared.events import TransferRequested
from seqferry_shared.messaging.publisher import MAX_ENTRY_BYTES, EventPublisher, PublishError, batches, entry_size


class FlakyEvents:
    """Answers put_events like EventBridge: some entries fail with a code on the first calls."""

    def __init__(self, failures: int) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.failures = failures

    async def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - botocore's name
        self.calls.append(Entries)
        results: list[dict[str, Any]] = []
        failed = 0
        for _ in Entries:
            if self.failures > 0:
                self.failures -= 1
                failed += 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": "ok"})
        return {"FailedEntryCount": failed, "Entries": results}


def detail(n: int) -> TransferRequested:
    return TransferRequested(request_id=f"r{n}", includes=["/x"])


async def test_batches_of_ten_and_failed_entries_retried() -> None:
    # GIVEN 23 events and a bus that fails the first 3 entries once
    events = FlakyEvents(failures=3)
    publisher = EventPublisher(events, "bus", base_delay_s=0)
    await publisher.publish(*(detail(n) for n in range(23)))
    # THEN calls carry at most 10 entries; only the 3 failed entries are sent again
    assert [len(c) for c in events.calls] == [10, 3, 10, 3]
    sent = [e for c in events.calls for e in c]
    assert len(sent) == 26


async def test_gives_up_with_the_error_codes() -> None:
    events = FlakyEvents(failures=1000)
    publisher = EventPublisher(events, "bus", max_attempts=3, base_delay_s=0)
    with pytest.raises(PublishError, match="ThrottlingException"):
        await publisher.publish(detail(1))
    assert len(events.calls) == 3


def test_batches_respect_total_size() -> None:
    big = {"Source": "s", "DetailType": "d", "Detail": "x" * 100_000, "EventBusName": "b"}
    groups = batches([big, big, big, big])
    assert [len(g) for g in groups] == [2, 2]
    assert all(sum(entry_size(e) for e in g) <= MAX_ENTRY_BYTES for g in groups)


def test_entry_over_the_limit_is_refused() -> None:
    publisher = EventPublisher(FlakyEvents(0), "bus")
    with pytest.raises(ValueError, match="256 KiB"):
        publisher.entry(TransferRequested(request_id="r", includes=["/" + "a" * 300_000]))
