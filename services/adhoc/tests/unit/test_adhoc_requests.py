"""Request ids, event building and splitting, result objects and the bounded event: pure, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seqferry_adhoc.domain.manifest import ManifestLimits, parse_manifest
from seqferry_adhoc.domain.records import bounded_includes
from seqferry_adhoc.domain.requests import (
    ManifestRef,
    ManifestResult,
    build_requests,
    build_result,
    idempotency_key,
    is_manifest_key,
    manifest_request_id,
    manifest_requests,
    processed_event,
)
from seqferry_shared.patterns import FILTER_VALUE_LIMIT
from seqferry_shared.resources import manifest_result_key

M = "/sequencers/incoming/miseq"
ROOTS = [M, "/sequencers/incoming/nextseq"]
WHEN = datetime(2024, 11, 25, 9, 0, tzinfo=UTC)
ENTRY_LIMIT = 256 * 1024


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("adhoc/retransfer.txt", True),
        ("adhoc/sub/folder/list.txt", True),
        ("adhoc/my file+x.txt", True),
        ("adhoc/results/retransfer.txt.json", False),
        ("adhoc/results/", False),
        ("adhoc/", False),
        ("adhoc/sub/", False),
        ("adhocx/list.txt", False),
        ("sequencers/incoming/miseq/run/RunInfo.xml", False),
    ],
)
def test_which_keys_are_manifests(key: str, expected: bool) -> None:
    assert is_manifest_key(key) is expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("adhoc/retransfer.txt", "adhoc/results/retransfer.txt.json"),
        ("adhoc/sub/list", "adhoc/results/sub/list.json"),
    ],
)
def test_result_key_mirrors_the_manifest_name(key: str, expected: str) -> None:
    assert manifest_result_key(key) == expected


def test_ids_derive_from_bucket_key_and_version() -> None:
    # GIVEN the same manifest version announced twice, and other versions and keys
    ref = ManifestRef("b", "adhoc/x.txt", version_id="v1", etag='"abc"')
    same = ManifestRef("b", "adhoc/x.txt", version_id="v1", etag='"abc"', size=12)
    # THEN the ids are equal for the same version and differ otherwise
    assert manifest_request_id(ref) == manifest_request_id(same)
    assert idempotency_key(ref) == idempotency_key(same)
    others = [
        ManifestRef("b", "adhoc/x.txt", version_id="v2"),
        ManifestRef("b", "adhoc/y.txt", version_id="v1"),
        ManifestRef("c", "adhoc/x.txt", version_id="v1"),
    ]
    assert len({manifest_request_id(r) for r in [ref, *others]}) == 4
    # AND without a version the ETag identifies it, with or without its quotes
    assert manifest_request_id(ManifestRef("b", "k", etag='"abc"')) == manifest_request_id(
        ManifestRef("b", "k", etag="abc")
    )
    assert idempotency_key(ref).startswith("adhoc#manifest#")
    # AND without a version, a new upload of identical content (new sequencer) is a new manifest
    first = ManifestRef("b", "k", etag="abc", sequencer="0055AED6DCD90281E5")
    again = ManifestRef("b", "k", etag="abc", sequencer="0055AED6DCD90281E5")
    later = ManifestRef("b", "k", etag="abc", sequencer="0055AED6DCD9028200")
    assert manifest_request_id(first) == manifest_request_id(again) != manifest_request_id(later)


def test_a_small_request_is_one_event_with_the_request_id() -> None:
    events = build_requests("r-1", [f"{M}/a", f"{M}/b"], reason="outage", requested_by="ops", task="t1")
    assert len(events) == 1
    (event,) = events
    assert event.request_id == "r-1"
    assert event.meta.correlation_id == "r-1"
    assert event.includes == [f"{M}/a", f"{M}/b"]
    assert (event.task, event.reason, event.requested_by) == ("t1", "outage", "ops")
    # AND building it again gives the same event id (redelivery is recognised downstream)
    assert build_requests("r-1", [f"{M}/a", f"{M}/b"], reason="outage", requested_by="ops")[0].meta.event_id == (
        event.meta.event_id
    )


def test_long_requests_split_at_the_datasync_filter_limit() -> None:
    # GIVEN 60 patterns of 4,000 characters (240,000 characters joined)
    patterns = [f"{M}/{i:04d}" + "x" * (4000 - len(M) - 6) for i in range(60)]
    # WHEN the request is built
    events = build_requests("m-abc", patterns, reason="r", requested_by="p")
    # THEN each part fits one filter value, parts are numbered, and together they are the patterns in order
    assert len(events) == 3
    assert [e.request_id for e in events] == ["m-abc-1", "m-abc-2", "m-abc-3"]
    assert all(len("|".join(e.includes)) <= FILTER_VALUE_LIMIT for e in events)
    assert [p for e in events for p in e.includes] == patterns
    assert len({e.meta.event_id for e in events}) == 3
    assert {e.meta.correlation_id for e in events} == {"m-abc"}


def test_multibyte_patterns_split_to_fit_an_eventbridge_entry() -> None:
    # GIVEN patterns of 4-byte characters: under 102,400 characters but far over 256 KiB of UTF-8
    patterns = [f"{M}/{i:03d}" + "\U0001f9ec" * 900 for i in range(90)]
    assert len("|".join(patterns)) < FILTER_VALUE_LIMIT
    # WHEN built / THEN every event fits an EventBridge entry and nothing is lost
    events = build_requests("r-x", patterns, reason="r", requested_by="p")
    assert len(events) > 1
    assert all(len(e.model_dump_json().encode()) < ENTRY_LIMIT for e in events)
    assert [p for e in events for p in e.includes] == patterns


def test_a_manifest_without_accepted_lines_requests_nothing() -> None:
    parsed = parse_manifest(b"/etc/passwd\n", ROOTS)
    assert manifest_requests(ManifestRef("b", "adhoc/x", version_id="v"), parsed) == []


def test_the_result_object_lists_everything_and_carries_no_raw_control_character() -> None:
    # GIVEN a manifest with hostile bytes and a key with an escape character
    ref = ManifestRef("b", "adhoc/\x1b[2Jlist.txt", version_id="v1", etag='"e"', size=10)
    data = f"# c\n{M}/a\n{M}/a\n{M}/b\x1b[31m\n/etc/\x00x\n{M}/c\u202e\n".encode()
    parsed = parse_manifest(data, ROOTS)
    requests = manifest_requests(ref, parsed)
    # WHEN the result is built and serialised
    result = build_result(ref, parsed, requests, roots=ROOTS, limits=ManifestLimits(), processed_at=WHEN)
    body = result.to_json()
    # THEN it is printable ASCII and lists the accepted, rejected and duplicate lines
    assert all(32 <= b < 127 or b == 10 for b in body)
    doc = json.loads(body)
    assert doc["status"] == "partially_accepted"
    assert doc["request_id"] == manifest_request_id(ref)
    assert doc["request_ids"] == [manifest_request_id(ref)]
    assert doc["accepted"] == [{"line": 2, "pattern": f"{M}/a"}]
    assert [(r["line"], r["text"]) for r in doc["rejected"]] == [
        (4, f"{M}/b\\x1b[31m"),
        (5, "/etc/\\x00x"),
        (6, f"{M}/c\\u202e"),
    ]
    assert doc["duplicates"] == [{"line": 3, "first_line": 2}]
    assert doc["manifest"]["key"] == "adhoc/\x1b[2Jlist.txt"
    assert doc["roots"] == ROOTS
    assert doc["limits"] == {"max_bytes": 1_048_576, "max_lines": 10_000, "max_line_length": 4_096}


def test_a_rejected_manifest_has_a_result_without_request() -> None:
    ref = ManifestRef("b", "adhoc/empty.txt", version_id="v1")
    parsed = parse_manifest(b"", ROOTS)
    result = build_result(ref, parsed, [], roots=ROOTS, limits=ManifestLimits(), processed_at=WHEN)
    assert (result.status, result.request_id, result.request_ids) == ("rejected", None, [])
    assert result.rejected[0].line == 0
    event = processed_event(ref, result)
    assert (event.accepted, event.request_ids) == ([], [])
    assert event.result_key == "adhoc/results/empty.txt.json"


def test_the_processed_event_is_cut_to_fit_while_the_result_stays_whole() -> None:
    # GIVEN a 1 MiB-class manifest: 2,000 accepted lines of ~300 characters and 2,000 rejected ones
    lines = [f"{M}/{i:05d}" + "y" * 150 + "/" + "y" * 150 for i in range(2000)] + [f"/etc/{i}" for i in range(2000)]
    ref = ManifestRef("b", "adhoc/big.txt", version_id="v9")
    parsed = parse_manifest("\n".join(lines).encode(), ROOTS)
    requests = manifest_requests(ref, parsed)
    result = build_result(ref, parsed, requests, roots=ROOTS, limits=ManifestLimits(), processed_at=WHEN)
    # WHEN the event is built
    event = processed_event(ref, result)
    # THEN it fits an EventBridge entry, keeps a prefix of each list, and points to the complete result
    assert len(event.model_dump_json().encode()) < ENTRY_LIMIT
    assert 0 < len(event.accepted) < 2000
    assert event.accepted == [a.pattern for a in result.accepted[: len(event.accepted)]]
    assert len(result.accepted) == 2000
    assert len(result.rejected) == 2000
    assert event.request_ids == result.request_ids
    assert len(event.request_ids) == len(requests) > 1
    assert event.meta.event_id == processed_event(ref, result).meta.event_id


def test_record_includes_are_bounded() -> None:
    patterns = [f"{M}/{i}" + "z" * 1000 for i in range(10)]
    kept, complete = bounded_includes(patterns, budget=5000)
    assert complete is False
    assert kept == patterns[:4]
    assert bounded_includes(patterns[:2], budget=5000) == (patterns[:2], True)


def test_the_documented_result_sample_matches_the_schema() -> None:
    sample = Path(__file__).resolve().parents[1] / "events" / "manifest_result.json"
    result = ManifestResult.model_validate_json(sample.read_text())
    assert result.status == "partially_accepted"
    assert [a.line for a in result.accepted] == [2, 4]
