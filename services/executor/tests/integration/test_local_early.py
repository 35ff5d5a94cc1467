"""The local engine sends files early and stays correct: the instrument's writing pattern decides when a base-call
file is final, everything else goes once briefly quiet and is sent again if it changes, the completion marker still
waits for every other file of its run, and a pass over many files streams with bounded work and remembers, per
folder, that nothing changed."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from local_support import RUN, SEQ, CountingProxy, age, make_settings, run_pass, write

from seqferry_shared.aws import sync_client
from seqferry_shared.events.models import TransferState

pytestmark = pytest.mark.integration

BASECALLS = f"{RUN}/Data/Intensities/BaseCalls/L001"


def objects(settings: Any) -> dict[str, bytes]:
    s3 = sync_client("s3", settings)
    bucket = settings.names.bucket
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def bcl(clusters: int, present: int | None = None) -> bytes:
    """A MiSeq .bcl: cluster count, then one byte per cluster (only ``present`` of them written so far)."""
    body = bytes(range(256)) * (clusters // 256 + 1)
    return struct.pack("<I", clusters) + body[: clusters if present is None else present]


async def test_a_file_sent_early_and_changed_later_is_sent_again_and_counted_each_time(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a quiet period of 5 s, but files the instrument's pattern says nothing about go once quiet for 0.2 s
    nas = tmp_path / "nas"
    settings = make_settings(tmp_path, resource_prefix, proxy.url, quiet_period_s=5.0, settle_s=0.2)
    backend = await factory(settings)
    sheet = write(nas, f"{RUN}/SampleSheet.csv", b"[Header]\nversion,1\n")
    await asyncio.sleep(0.3)
    # WHEN a pass runs well within the quiet period
    first = await run_pass(backend, [RUN])
    # THEN the file is sent and verified already
    assert (first.counters.files_transferred, first.counters.files_verified) == (1, 1)
    # WHEN it is rewritten afterwards (an instrument updating its sample sheet) and a pass runs once it settled
    sheet.write_bytes(b"[Header]\nversion,2\n[Data]\nS1\n")
    await asyncio.sleep(0.3)
    second = await run_pass(backend, [RUN])
    # THEN it is sent again, the object is the file as it is now, and both sends are counted as bytes transferred
    assert (second.counters.files_transferred, second.counters.files_verified) == (1, 1)
    assert objects(settings) == {f"{RUN}/SampleSheet.csv"[1:]: sheet.read_bytes()}
    sent = first.counters.bytes_transferred + second.counters.bytes_transferred
    assert sent == len(b"[Header]\nversion,1\n") + len(sheet.read_bytes())


async def test_with_the_optimistic_path_off_files_wait_the_quiet_period(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    nas = tmp_path / "nas"
    settings = make_settings(tmp_path, resource_prefix, proxy.url, quiet_period_s=5.0, optimistic=False)
    backend = await factory(settings)
    write(nas, f"{RUN}/SampleSheet.csv", b"[Header]\n")
    await asyncio.sleep(0.3)
    status = await run_pass(backend, [RUN])
    assert (status.counters.files_transferred, status.runs[0].files_pending) == (0, 1)
    assert proxy.writes() == []


async def test_base_calls_go_when_their_instrument_is_done_with_them_and_never_twice(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a MiSeq run in its first cycle: a tile's .bcl half written (its header says 1,000 clusters), its .stats,
    # and a long hold for files the instrument is still writing
    nas = tmp_path / "nas"
    settings = make_settings(tmp_path, resource_prefix, proxy.url, quiet_period_s=0.2, settle_s=0.2, hold_s=60)
    backend = await factory(settings)
    tile = write(nas, f"{BASECALLS}/C1.1/s_1_1101.bcl", bcl(1000, present=500))
    stats = write(nas, f"{BASECALLS}/C1.1/s_1_1101.stats", b"s" * 108)
    age(tile, stats, seconds=5)
    await asyncio.sleep(0.3)
    # WHEN a pass runs THEN neither goes: the .bcl is shorter than its header says, the .stats belongs to the cycle
    # still being written
    first = await run_pass(backend, [RUN])
    assert (first.counters.files_transferred, first.runs[0].files_pending) == (0, 2)
    # WHEN the .bcl is whole THEN the next pass sends it at once, without waiting the hold
    with tile.open("ab") as handle:
        handle.write(bcl(1000)[4 + 500 :])
    await asyncio.sleep(0.3)
    second = await run_pass(backend, [RUN])
    assert (second.counters.files_verified, second.runs[0].files_pending) == (1, 1)
    # WHEN the next cycle starts THEN the first cycle's .stats is final and goes, with the new cycle's whole .bcl
    write(nas, f"{BASECALLS}/C2.1/s_1_1101.bcl", bcl(1000))
    await asyncio.sleep(0.3)
    third = await run_pass(backend, [RUN])
    assert (third.counters.files_verified, third.runs[0].files_pending) == (2, 0)
    # WHEN RTA writes its marker THEN it goes, last
    marker = write(nas, f"{RUN}/RTAComplete.txt", b"RTA done\r\n")
    await asyncio.sleep(0.3)
    proxy.requests.clear()
    last = await run_pass(backend, [RUN])
    assert (last.state, last.counters.files_verified) == (TransferState.SUCCESS, 1)
    assert [p for m, p in proxy.writes()][-1].endswith("RTAComplete.txt")
    # THEN every file was sent once: nothing sent is wasted
    stored = objects(settings)
    assert len(stored) == 4
    assert stored[f"{BASECALLS}/C1.1/s_1_1101.bcl"[1:]] == tile.read_bytes()
    sent = sum(s.counters.bytes_transferred for s in (first, second, third, last))
    assert (
        sent
        == sum(len(body) for body in stored.values())
        == sum(p.stat().st_size for p in (tile, stats, marker)) + 1004
    )


async def test_the_marker_waits_for_a_file_that_changed_after_it_was_sent_early(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run whose sample sheet was sent early
    nas = tmp_path / "nas"
    settings = make_settings(tmp_path, resource_prefix, proxy.url, quiet_period_s=5.0, settle_s=0.2)
    backend = await factory(settings)
    sheet = write(nas, f"{RUN}/SampleSheet.csv", b"first\n")
    await asyncio.sleep(0.3)
    assert (await run_pass(backend, [RUN])).counters.files_verified == 1
    # WHEN it is rewritten, the run's marker appears, and the sheet changes again while its new version is on the wire
    sheet.write_bytes(b"second version\n")
    write(nas, f"{RUN}/RTAComplete.txt", b"done\r\n")
    await asyncio.sleep(0.3)

    def change_while_sent(method: str, request_path: str) -> None:
        if method == "PUT" and request_path.endswith("SampleSheet.csv"):
            proxy.hook = None
            sheet.write_bytes(b"third and last version\n")

    proxy.hook = change_while_sent
    proxy.requests.clear()
    held = await run_pass(backend, [RUN])
    # THEN the marker is held back: the sheet is not verified
    assert held.runs[0].files_pending >= 1
    assert not any(p.endswith("RTAComplete.txt") for _, p in proxy.writes())
    assert f"{RUN}/RTAComplete.txt"[1:] not in objects(settings)
    # WHEN the sheet settles THEN the next pass sends it, then the marker, and the bucket holds the run as it is
    await asyncio.sleep(0.3)
    proxy.requests.clear()
    done = await run_pass(backend, [RUN])
    assert done.runs[0].files_pending == 0
    assert [p.rsplit("/", 1)[1] for _, p in proxy.writes()] == ["SampleSheet.csv", "RTAComplete.txt"]
    assert objects(settings)[f"{RUN}/SampleSheet.csv"[1:]] == b"third and last version\n"


async def test_a_file_a_little_too_fresh_for_the_walk_still_goes_in_the_same_pass(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    nas = tmp_path / "nas"
    settings = make_settings(tmp_path, resource_prefix, proxy.url, quiet_period_s=5.0, settle_s=0.4)
    backend = await factory(settings)
    # GIVEN a file written just now WHEN a pass runs at once
    written = time.monotonic()
    path = write(nas, f"{RUN}/RunInfo.xml", b"<RunInfo/>")
    status = await run_pass(backend, [RUN])
    # THEN the pass waited for it to settle and sent it, rather than leaving it to the next pass
    assert (status.counters.files_verified, status.runs[0].files_pending) == (1, 0)
    assert time.monotonic() - written >= 0.4
    assert objects(settings) == {f"{RUN}/RunInfo.xml"[1:]: path.read_bytes()}


async def test_many_files_stream_through_few_upload_slots_and_unchanged_folders_cost_no_request(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN 240 files in 12 folders, and an engine with 4 upload slots (the walk waits for them)
    nas = tmp_path / "nas"
    paths = [write(nas, f"{SEQ}/scale/d{i // 20:02d}/f{i:04d}.bin", os.urandom(64)) for i in range(240)]
    age(*paths)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, concurrency=4)
    backend = await factory(settings)
    await asyncio.sleep(0.3)
    # WHEN a first pass runs THEN every file is sent and verified
    first = await run_pass(backend, [f"{SEQ}/scale"])
    assert (first.state, first.counters.files_verified) == (TransferState.SUCCESS, 240)
    assert len(objects(settings)) == 240
    # WHEN nothing changed THEN the next pass sends nothing, each folder counted from its digest
    proxy.requests.clear()
    second = await run_pass(backend, [f"{SEQ}/scale"])
    assert (second.counters.files_skipped, proxy.requests) == (240, [])
    assert backend._index.digests == 13  # the 12 folders and the one holding them
    # WHEN the executor restarts (digests are the process's own) THEN the rows say the same: still no request
    await backend.close()
    restarted = await factory(settings)
    proxy.requests.clear()
    third = await run_pass(restarted, [f"{SEQ}/scale"])
    assert (third.counters.files_skipped, proxy.requests) == (240, [])
    # WHEN three files of one folder change THEN exactly those are sent again
    for path in paths[100:103]:
        path.write_bytes(b"changed")
        age(path)
    await asyncio.sleep(0.3)
    proxy.requests.clear()
    fourth = await run_pass(restarted, [f"{SEQ}/scale"])
    assert (fourth.counters.files_transferred, fourth.counters.files_skipped) == (3, 237)
    assert sorted(p.rsplit("/", 1)[1] for _, p in proxy.writes()) == ["f0100.bin", "f0101.bin", "f0102.bin"]
    # ... and the folder's digest is stored again right away: the next pass is request-free and settled
    proxy.requests.clear()
    fifth = await run_pass(restarted, [f"{SEQ}/scale"])
    assert (fifth.counters.files_skipped, proxy.requests) == (240, [])
    assert restarted._index.digests == 13
