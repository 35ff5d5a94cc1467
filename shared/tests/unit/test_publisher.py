import asyncio
import json
import random
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from seqferry_shared.events import TransferRequested
from seqferry_shared.messaging.publisher import (
    MAX_ENTRY_BYTES,
    EntryTooLargeError,
    EventPublisher,
    PublishError,
    batches,
    entry_size,
)


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


async def test_retries_back_off_from_the_base_delay_doubling_up_to_five_seconds_with_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a bus that refuses every entry, and the publisher's waits recorded instead of slept
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", wait)
    for jitter, share in (("least", 0.5), ("most", 1.0)):
        # WHEN the jitter draws its least, then its most
        monkeypatch.setattr(random, "uniform", lambda low, high, pick=jitter: low if pick == "least" else high)
        waits.clear()
        publisher = EventPublisher(FlakyEvents(failures=1000), "bus", max_attempts=7, base_delay_s=1.0)
        with pytest.raises(PublishError):
            await publisher.publish(detail(1))
        # THEN each retry waits half to all of the base delay doubled per attempt, at most 5 s
        assert waits == [share * d for d in (1, 2, 4, 5, 5, 5, 5)]


def test_entry_size_counts_what_eventbridge_counts() -> None:
    # GIVEN an entry with a time stamp, non-ASCII text and resources
    entry = {"Source": "lims", "DetailType": "Transfer Requested", "Detail": '{"a":"é"}', "EventBusName": "bus",
             "Time": "2025-01-01T00:00:00Z", "Resources": ["arn:1", "arn:22"]}  # fmt: skip
    # THEN its size is 14 bytes for the time stamp plus the UTF-8 bytes of the fields and resources
    assert entry_size(entry) == 14 + 4 + 18 + 10 + 3 + 5 + 6
    assert entry_size({k: v for k, v in entry.items() if k != "Time"}) == 4 + 18 + 10 + 3 + 5 + 6


def test_a_call_may_carry_exactly_256_kib_and_an_entry_may_be_exactly_256_kib() -> None:
    publisher = EventPublisher(FlakyEvents(0), "bus")
    # GIVEN entries that add up to exactly EventBridge's limit THEN they go in one call; one byte more splits them
    half = {"Source": "s", "DetailType": "d", "EventBusName": "b"}
    fill = MAX_ENTRY_BYTES // 2 - entry_size({**half, "Detail": ""})
    exact = [{**half, "Detail": "x" * fill}] * 2
    assert sum(entry_size(e) for e in exact) == MAX_ENTRY_BYTES
    assert [len(g) for g in batches(exact)] == [2]
    over = [*exact[:1], {**half, "Detail": "x" * (fill + 1)}]
    assert [len(g) for g in batches(over)] == [1, 1]
    # AND so does every later call (after ten small entries filled the first one)
    assert [len(g) for g in batches([{**half, "Detail": ""}] * 10 + exact)] == [10, 2]
    assert [len(g) for g in batches([{**half, "Detail": ""}] * 10 + over)] == [10, 1, 1]
    # GIVEN a detail whose entry is exactly the limit THEN it is accepted; one byte more is refused
    probe = publisher.entry(TransferRequested(request_id="r", includes=["/a"]))
    padding = MAX_ENTRY_BYTES - entry_size(probe)
    exact_entry = publisher.entry(TransferRequested(request_id="r", includes=["/a" + "a" * padding]))
    assert entry_size(exact_entry) == MAX_ENTRY_BYTES
    with pytest.raises(EntryTooLargeError):
        publisher.entry(TransferRequested(request_id="r", includes=["/a" + "a" * (padding + 1)]))


def test_an_entry_carries_the_current_trace_and_the_resources_it_is_given() -> None:
    publisher = EventPublisher(FlakyEvents(0), "bus")
    tracer = TracerProvider().get_tracer("tests")
    # GIVEN a detail published inside a span, naming a resource
    with tracer.start_as_current_span("producer") as span:
        entry = publisher.entry(detail(1), resources=["arn:aws:datasync:eu-west-1:1:task/task-1"])
        trace_id = f"{span.get_span_context().trace_id:032x}"
    # THEN its meta carries the span's trace context, and the entry the resource
    meta = json.loads(entry["Detail"])["meta"]
    assert meta["traceparent"].split("-")[1] == trace_id
    assert entry["Resources"] == ["arn:aws:datasync:eu-west-1:1:task/task-1"]
    # GIVEN neither THEN the entry has no trace context and no resources
    plain = publisher.entry(detail(2))
    assert "traceparent" not in json.loads(plain["Detail"])["meta"]
    assert "Resources" not in plain
