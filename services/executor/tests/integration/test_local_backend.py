"""The local backend against the moto server over real HTTP, through a proxy that counts (and can intercept)
every request the engine sends."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.credentials
import pytest
from local_support import (
    RUN,
    RUN_ID,
    SEQ,
    CountingProxy,
    age,
    b64,
    composite_crc32c,
    crc32c_of,
    make_settings,
    run_pass,
    settle,
    wait_for,
    write,
)

from seqferry_executor.backends.base import BackendError
from seqferry_executor.backends.local import backend as backend_module
from seqferry_executor.backends.local.config import MIB
from seqferry_executor.backends.local.scan import SYMLINK_ESCAPE, FolderScan
from seqferry_shared.aws import sync_client
from seqferry_shared.events.models import TransferState
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.testing.lifecycle import object_outcome
from seqferry_shared.testing.motoserver import MotoServer

pytestmark = pytest.mark.integration

# -- tests --------------------------------------------------------------------------------------------------------


async def test_transfer_verify_no_change_pass_and_changed_file(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run folder with small files, an empty marker, a multipart-sized file and an odd file name
    nas = tmp_path / "nas"
    files = {
        f"{RUN}/RunInfo.xml": b"<RunInfo/>",
        f"{RUN}/Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl": os.urandom(300_000),
        f"{RUN}/InterOp/Q Metrics+Out.bin": os.urandom(5000),
        f"{RUN}/Big.bin": os.urandom(12 * MIB + 123),
        f"{RUN}/RTAComplete.txt": b"",
    }
    paths = [write(nas, p, data) for p, data in files.items()]
    age(*paths)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    backend = await factory(settings)
    await settle()

    # WHEN a first pass runs
    first = await run_pass(backend, [f"{SEQ}/2511*"])

    # THEN everything is transferred and verified, counted like DataSync, summarised per run
    assert first.state is TransferState.SUCCESS, first.error
    c = first.counters
    total = sum(len(d) for d in files.values())
    assert (c.files_estimated, c.files_transferred, c.files_verified, c.files_failed) == (5, 5, 5, 0)
    assert (c.bytes_estimated, c.bytes_transferred, c.bytes_verified) == (total, total, total)
    (run,) = first.runs
    assert (run.run_id, run.files_total, run.bytes_total, run.files_verified) == (RUN_ID, 5, total, 5)
    assert run.markers == ["RTAComplete.txt"]
    # ... every object's bytes and checksum equal the source, with the lifecycle tag where one applies
    s3 = sync_client("s3", settings)
    bucket = settings.names.bucket
    for nas_path, data in files.items():
        key = nas_path.lstrip("/")
        obj = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert obj["Body"].read() == data, key
        expected = composite_crc32c(data, 5 * MIB) if len(data) > 5 * MIB else crc32c_of(data)
        assert obj["ChecksumCRC32C"].split("-")[0] == expected, key
        assert obj["Metadata"]["file-mtime"] == f"{(nas / key).stat().st_mtime_ns}ns"
        assert "seqferry-nas-path" not in obj["Metadata"], key  # only a key that differs from the path carries it
    tags = s3.get_object_tagging(Bucket=bucket, Key=f"{RUN}/Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl"[1:])
    assert tags["TagSet"] == [{"Key": "seqferry-class", "Value": "basecalls"}]
    assert s3.get_object_tagging(Bucket=bucket, Key=f"{RUN}/RunInfo.xml"[1:])["TagSet"] == [
        {"Key": "seqferry-class", "Value": "run"}
    ]
    # ... and the completion marker was the last object written
    puts = [p for m, p in proxy.writes() if m == "PUT" and "partNumber" not in p]
    assert puts[-1].endswith("/RTAComplete.txt")

    # WHEN a second pass runs with nothing changed
    proxy.requests.clear()
    second = await run_pass(backend, [f"{SEQ}/2511*"])

    # THEN it sends no request at all: unchanged files cost a stat
    assert second.state is TransferState.SUCCESS
    assert proxy.requests == []
    assert (second.counters.files_transferred, second.counters.files_skipped) == (0, 5)

    # WHEN one file changes and becomes stable again
    changed = write(nas, f"{RUN}/RunInfo.xml", b"<RunInfo changed='yes'/>")
    await settle()
    proxy.requests.clear()
    third = await run_pass(backend, [f"{SEQ}/2511*"])

    # THEN exactly that file is shipped again
    assert third.state is TransferState.SUCCESS
    assert (third.counters.files_transferred, third.counters.files_verified, third.counters.files_skipped) == (1, 1, 4)
    assert [m for m, _ in proxy.writes()] == ["PUT"]
    body = s3.get_object(Bucket=bucket, Key=f"{RUN}/RunInfo.xml"[1:])["Body"].read()
    assert body == changed.read_bytes()


async def test_growing_file_is_never_verified_while_it_grows(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a file that keeps growing while passes run every 0.2 s, with a quiet period of 1 s and the optimistic
    # path off (with it on, a version caught between two writes may be sent and verified, then sent again: see
    # test_local_early.py)
    nas = tmp_path / "nas"
    growing = write(nas, f"{RUN}/Data/growing.cbcl", b"start")
    settings = make_settings(tmp_path, resource_prefix, proxy.url, quiet_period_s=1.0, optimistic=False)
    backend = await factory(settings)
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            with growing.open("ab") as handle:
                handle.write(os.urandom(1000))
            await asyncio.sleep(0.1)

    writing = asyncio.create_task(writer())
    # WHEN passes run while it grows
    statuses = []
    for _ in range(6):
        statuses.append(await run_pass(backend, [RUN]))
        await asyncio.sleep(0.2)
    stop.set()
    await writing
    # THEN it was never shipped, never verified, and reported pending
    assert all(s.counters.files_verified == 0 and s.counters.files_transferred == 0 for s in statuses)
    assert all(s.runs[0].files_pending == 1 for s in statuses)
    assert proxy.writes() == []
    # WHEN it stops growing and stays quiet THEN the next pass ships and verifies it
    await asyncio.sleep(1.2)
    final = await run_pass(backend, [RUN])
    assert (final.counters.files_transferred, final.counters.files_verified) == (1, 1)
    s3 = sync_client("s3", settings)
    assert s3.get_object(Bucket=settings.names.bucket, Key=growing.relative_to(nas).as_posix())["Body"].read() == (
        growing.read_bytes()
    )


async def test_file_changed_during_upload_is_not_verified_and_is_shipped_again(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a stable file, and a proxy that appends to it while its PUT is on the wire
    nas = tmp_path / "nas"
    path = write(nas, f"{RUN}/Data/late.cbcl", os.urandom(50_000))
    age(path)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    await settle()

    def append_once(method: str, request_path: str) -> None:
        if method == "PUT" and request_path.endswith("late.cbcl"):
            proxy.hook = None
            with path.open("ab") as handle:
                handle.write(b"more")

    proxy.hook = append_once
    # WHEN a pass runs
    first = await run_pass(backend, [RUN])
    # THEN the file is transferred but not verified, and pending for a later pass
    assert first.state is TransferState.SUCCESS
    assert (first.counters.files_transferred, first.counters.files_verified) == (1, 0)
    assert first.runs[0].files_pending == 1
    # ... and its upload intent is cleared with the pass: a restart would not ask S3 about it
    assert backend._engine._index.intents() == []
    # WHEN it is quiet again THEN the next pass ships it again and the object equals the file
    await settle()
    second = await run_pass(backend, [RUN])
    assert (second.counters.files_transferred, second.counters.files_verified) == (1, 1)
    s3 = sync_client("s3", settings)
    obj = s3.get_object(Bucket=settings.names.bucket, Key=path.relative_to(nas).as_posix(), ChecksumMode="ENABLED")
    data = path.read_bytes()
    assert obj["Body"].read() == data
    assert obj["ChecksumCRC32C"] == crc32c_of(data)


async def test_a_file_that_changes_while_its_upload_fails_is_pending_not_failed(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a stable file of three parts: the first answered after 1.5 s (so that it is counted: the native client
    # reports progress at most once a second), then the file is appended to and the other two are never answered
    # (the upload fails after the client's retries); the pass does not linger to send it again
    nas = tmp_path / "nas"
    size = 12 * MIB + 7
    path = write(nas, f"{RUN}/Data/late.bin", os.urandom(size))
    age(path)
    settings = make_settings(
        tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB, linger_s=0
    )
    backend = await factory(settings)
    await settle()
    counted = threading.Event()
    dropped: list[str] = []

    def count_one_part_then_change_and_drop(method: str, request_path: str) -> bool | None:
        part = parse_qs(urlsplit(request_path).query).get("partNumber")
        if part == ["1"]:
            time.sleep(1.5)
            return None
        if not part:
            return None
        counted.wait(30)
        if not dropped:
            with path.open("ab") as handle:
                handle.write(b"more")
        dropped.append(request_path)
        return False

    proxy.hook = count_one_part_then_change_and_drop
    try:
        # WHEN a pass runs
        execution_id = await backend.start("t", [RUN])
        deadline = time.monotonic() + 30
        while (await backend.describe(execution_id)).counters.bytes_transferred == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        counted.set()
    first = await wait_for(backend, execution_id)
    # THEN the failed upload of a file that changed meanwhile is no problem: the file is pending (sent again once
    # stable), not failed; the upload counts its bytes once, as sent (a re-send shows), and leaves no parts behind
    assert dropped, "the later parts never went out"
    assert first.state is TransferState.SUCCESS, first.error
    assert (first.counters.files_failed, first.counters.files_transferred, first.counters.files_verified) == (0, 0, 0)
    assert first.counters.bytes_transferred == size
    assert first.problems == []
    assert first.runs[0].files_pending == 1
    s3 = sync_client("s3", settings)
    assert s3.list_multipart_uploads(Bucket=settings.names.bucket).get("Uploads", []) == []
    # WHEN the bucket answers again and the file is quiet THEN the next pass ships what it is now, verified
    proxy.hook = None
    await settle()
    second = await run_pass(backend, [RUN])
    assert second.state is TransferState.SUCCESS, second.error
    assert (second.counters.files_transferred, second.counters.files_verified) == (1, 1)
    obj = s3.get_object(Bucket=settings.names.bucket, Key=path.relative_to(nas).as_posix())
    assert obj["Body"].read() == path.read_bytes()


async def test_an_object_that_cannot_be_checked_after_its_upload_is_failed_never_verified(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a multipart-sized file, and a bucket whose answers to HEAD (the check after upload) are lost
    nas = tmp_path / "nas"
    data = os.urandom(6 * MIB)
    path = write(nas, f"{RUN}/Data/big.bin", data)
    age(path)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    settings = settings.model_copy(update={"aws_max_attempts": 2})  # a lost answer is retried once, not ten times
    backend = await factory(settings)
    await settle()
    proxy.hook = lambda method, request_path: False if method == "HEAD" else None
    # WHEN a pass runs
    first = await run_pass(backend, [RUN])
    # THEN the file is failed with the reason and not verified, and the pass ends in error
    assert first.state is TransferState.ERROR
    assert (first.counters.files_failed, first.counters.files_verified) == (1, 0)
    assert first.error is not None
    assert f"{RUN}/Data/big.bin: object check after upload failed" in first.error.message
    # WHEN the bucket answers again THEN the next pass ships it again and verifies it
    proxy.hook = None
    second = await run_pass(backend, [RUN])
    assert second.state is TransferState.SUCCESS, second.error
    assert (second.counters.files_transferred, second.counters.files_verified) == (1, 1)
    s3 = sync_client("s3", settings)
    assert s3.get_object(Bucket=settings.names.bucket, Key=path.relative_to(nas).as_posix())["Body"].read() == data


async def test_a_large_file_shows_its_bytes_while_its_parts_upload(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a file of three parts: the first answered after 1.5 s (the native client reports progress at most once a
    # second), the other two held until the test has seen the first counted
    nas = tmp_path / "nas"
    data = os.urandom(12 * MIB + 7)
    path = write(nas, f"{RUN}/Data/big.bin", data)
    age(path)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    backend = await factory(settings)
    await settle()
    seen = threading.Event()

    def slow_first_part_hold_the_rest(method: str, request_path: str) -> bool | None:
        part = parse_qs(urlsplit(request_path).query).get("partNumber")
        if part == ["1"]:
            time.sleep(1.5)
        elif part:
            seen.wait(30)
        return None

    proxy.hook = slow_first_part_hold_the_rest
    try:
        # WHEN a pass uploads it
        execution_id = await backend.start("t", [RUN])
        # THEN while the later parts are on the wire, the first part's bytes count as transferred (a progress bar
        # moves during a large file, not only at its end), and no more than that part
        deadline = time.monotonic() + 30
        while (status := await backend.describe(execution_id)).counters.bytes_transferred == 0:
            assert not status.state.terminal, "the upload ended before any of its bytes were counted"
            assert time.monotonic() < deadline, "no bytes counted while the later parts were on the wire"
            await asyncio.sleep(0.05)
        assert status.counters.bytes_transferred == 5 * MIB
        assert (status.counters.files_transferred, status.counters.files_verified) == (0, 0)
    finally:
        seen.set()
    # ... and at its end the file counts once, whole
    final = await wait_for(backend, execution_id)
    assert final.state is TransferState.SUCCESS, final.error
    assert (final.counters.files_verified, final.counters.bytes_transferred) == (1, len(data))


async def test_a_finished_multipart_upload_leaves_nothing_for_a_restart_to_abort(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a multipart-sized file and a small one, shipped and verified by one engine
    nas = tmp_path / "nas"
    paths = [write(nas, f"{RUN}/Data/big.bin", os.urandom(6 * MIB)), write(nas, f"{RUN}/RunInfo.xml", b"<RunInfo/>")]
    age(*paths)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    first = await factory(settings)
    await settle()
    assert (await run_pass(first, [RUN])).counters.files_verified == 2
    await first.close()
    # WHEN the engine restarts on the same change index and runs a pass with nothing changed
    proxy.requests.clear()
    second = await factory(settings)
    status = await run_pass(second, [RUN])
    # THEN it sends no request at all: no upload was left marked as in progress, so its crash recovery asks S3
    # nothing (a killed process's uploads are covered by test_crash_mid_multipart_then_redelivery_leaves_no_parts)
    assert (status.state, status.counters.files_skipped) == (TransferState.SUCCESS, 2)
    assert proxy.requests == []


async def test_unreadable_files_fail_with_reasons_while_the_rest_succeed(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN good files and three files that cannot be read, even as root, with links followed where allowed:
    #   - a self-referencing symlink (ELOOP on open),
    #   - a symlink leading outside the NAS root (refused),
    #   - a file removed between the scan and the read.
    nas = tmp_path / "nas"
    good = [write(nas, f"{RUN}/Data/ok{i}.cbcl", os.urandom(2000)) for i in range(3)]
    vanishing = write(nas, f"{RUN}/Data/vanishing.cbcl", os.urandom(2000))
    age(*good, vanishing)
    (nas / RUN.lstrip("/") / "loop").symlink_to(nas / RUN.lstrip("/") / "loop")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the NAS")
    (nas / RUN.lstrip("/") / "escape.txt").symlink_to(secret)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, follow_symlinks=True)
    backend = await factory(settings)
    scanner = backend._engine._scanner
    original_walk = scanner.walk

    def scan_then_remove(*args: Any) -> Iterator[FolderScan]:
        result = list(original_walk(*args))  # the whole walk first
        vanishing.unlink()
        return iter(result)

    scanner.walk = scan_then_remove  # type: ignore[method-assign]
    await settle()
    # WHEN a pass runs
    status = await run_pass(backend, [RUN])
    # THEN the three are failed with their reasons, the others transferred and verified
    assert status.state is TransferState.ERROR
    assert status.error is not None
    assert status.error.code == "FilesFailed"
    assert status.counters.files_failed == 3
    assert (status.counters.files_transferred, status.counters.files_verified) == (3, 3)
    message = status.error.message
    assert f"{RUN}/loop: symbolic link unresolvable" in message
    assert f"{RUN}/escape.txt: {SYMLINK_ESCAPE}" in message
    assert f"{RUN}/Data/vanishing.cbcl: file removed between scan and read" in message
    assert status.runs[0].files_failed == 3
    s3 = sync_client("s3", settings)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=settings.names.bucket).get("Contents", [])}
    assert keys == {p.relative_to(nas).as_posix() for p in good}
    assert backend._engine._index.intents() == []  # the vanished file's intent went with the pass


async def test_a_missing_nas_root_ends_the_pass_as_nas_unavailable(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN an engine over a NAS whose root then disappears (unmounted, unreachable)
    nas = tmp_path / "nas"
    age(write(nas, f"{RUN}/RunInfo.xml", b"<RunInfo/>"))
    backend = await factory(make_settings(tmp_path, resource_prefix, proxy.url))
    nas.rename(tmp_path / "nas.away")
    # WHEN a pass runs
    status = await run_pass(backend, [RUN])
    # THEN it ends as NasUnavailable, naming the root, and nothing was sent
    assert status.state is TransferState.ERROR
    assert status.error is not None
    assert status.error.code == "NasUnavailable"
    assert "is not available" in status.error.message
    assert not [method for method, _ in proxy.requests if method == "PUT"]


async def test_index_rebuilt_from_the_bucket_makes_no_uploads(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN files shipped by one engine
    nas = tmp_path / "nas"
    paths = [write(nas, f"{RUN}/Data/f{i}.cbcl", os.urandom(1000)) for i in range(4)]
    age(*paths)
    await settle()
    first = await factory(make_settings(tmp_path, resource_prefix, proxy.url))
    assert (await run_pass(first, [RUN])).counters.files_verified == 4
    await first.close()
    # WHEN the index is lost and a new engine starts (rebuilding it from the bucket)
    for leftover in (tmp_path / "state").iterdir():
        leftover.unlink()
    proxy.requests.clear()
    second = await factory(make_settings(tmp_path, resource_prefix, proxy.url))
    status = await run_pass(second, [RUN])
    # THEN nothing is uploaded again: a listing and one HeadObject per file confirmed them
    assert status.state is TransferState.SUCCESS
    assert (status.counters.files_transferred, status.counters.files_skipped) == (0, 4)
    assert proxy.writes() == []
    assert sum(1 for m, _ in proxy.requests if m == "HEAD") == 4
    # ... and the pass after that costs no request at all
    proxy.requests.clear()
    assert (await run_pass(second, [RUN])).counters.files_skipped == 4
    assert proxy.requests == []


async def test_sha256_checksums(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    nas = tmp_path / "nas"
    data = os.urandom(4096)
    path = write(nas, "/adhoc/list.txt", data)
    age(path)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, checksum="sha256")
    backend = await factory(settings)
    await settle()
    status = await run_pass(backend, ["/adhoc/"])
    assert (status.state, status.counters.files_verified, status.runs) == (TransferState.SUCCESS, 1, [])
    s3 = sync_client("s3", settings)
    obj = s3.get_object(Bucket=settings.names.bucket, Key="adhoc/list.txt", ChecksumMode="ENABLED")
    assert obj["ChecksumSHA256"] == b64(hashlib.sha256(data).digest())


async def test_invalid_patterns_and_unknown_executions_are_refused(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    backend = await factory(make_settings(tmp_path, resource_prefix, proxy.url))
    with pytest.raises(BackendError, match="only as the last character"):
        await backend.start("t", ["/seq/*/x"])
    with pytest.raises(BackendError, match="unknown execution"):
        await backend.describe("exec-0000")


CRASH_CHILD = """
import asyncio, json, sys
from pathlib import Path
from seqferry_shared.aws import ClientFactory
from seqferry_executor.backends.local import LocalBackend, LocalBackendConfig
from seqferry_executor.backends.local import backend as backend_module
from seqferry_executor.settings import ExecutorSettings as Settings

async def main():
    args = json.loads(sys.argv[1])
    settings = Settings(
        prefix=args["prefix"], environment="test", aws_endpoint_url=args["endpoint"], nas_root=Path(args["nas"]),
        sequencer_paths=args["sequencers"], local=LocalBackendConfig(**args["local"]),
    )
    clients = ClientFactory(settings)
    backend = await LocalBackend.create(settings=settings, clients=clients)
    execution_id = await backend.start("t", args["includes"])
    print(execution_id, flush=True)
    if args.get("finish"):
        while not (status := await backend.describe(execution_id)).state.terminal:
            await asyncio.sleep(0.05)
        print(status.state.value, flush=True)
        await backend.close()
        await clients.close()
        return
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_crash_mid_multipart_then_redelivery_leaves_no_parts(
    tmp_path: Path,
    resource_prefix: str,
    bootstrapped: dict[str, Any],
    proxy: CountingProxy,
    moto_server: MotoServer,
    factory: Any,
) -> None:
    # GIVEN a large file and an engine process whose parts crawl through the proxy
    nas = tmp_path / "nas"
    data = os.urandom(30 * MIB)
    path = write(nas, f"{RUN}/Data/huge.bin", data)
    age(path)
    await settle()
    local = {
        "quiet_period_s": 0.2,
        "index_path": str(tmp_path / "state" / "index.sqlite"),
        "multipart_threshold": 5 * MIB,
        "part_size": 5 * MIB,
    }
    # Part 1 goes through; every other part is held until the engine is dead, then dropped: the kill is
    # certain to land mid-upload, with one part stored, however slow the machine is.
    engine_dead = threading.Event()

    def hold_later_parts(method: str, request_path: str) -> bool | None:
        part = parse_qs(urlsplit(request_path).query).get("partNumber")
        if part and part != ["1"]:
            engine_dead.wait(120)
            return False
        return None

    proxy.hook = hold_later_parts
    args = {"prefix": resource_prefix, "endpoint": proxy.url, "nas": str(nas), "sequencers": f"{SEQ}=miseq",
            "local": local, "includes": [RUN]}  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    s3 = sync_client("s3", make_settings(tmp_path, resource_prefix, moto_server.url))
    bucket = ServiceSettings(prefix=resource_prefix).names.bucket
    try:
        assert child.stdout is not None
        execution_id = child.stdout.readline().strip()
        assert execution_id.startswith("exec-")
        # WHEN the process is killed once parts of the upload have landed
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            if uploads and s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]).get(
                "Parts"
            ):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the multipart upload never started")
    finally:
        child.kill()
        child.wait()
        engine_dead.set()
        if child.stdout is not None:
            child.stdout.close()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "the crash should leave an upload behind"
    proxy.hook = None

    # ... and the execution is redelivered to a new engine with the same change index
    backend = await factory(make_settings(tmp_path, resource_prefix, proxy.url, **local))
    await backend.resume(execution_id, "t", [RUN])
    status = await wait_for(backend, execution_id)

    # THEN the object is complete and correct, and no upload or part is left behind
    assert status.state is TransferState.SUCCESS, status.error
    assert (status.counters.files_transferred, status.counters.files_verified) == (1, 1)
    obj = s3.get_object(Bucket=bucket, Key=path.relative_to(nas).as_posix(), ChecksumMode="ENABLED")
    assert obj["Body"].read() == data
    assert obj["ChecksumCRC32C"].split("-")[0] == composite_crc32c(data, 5 * MIB)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_engine_process_exits_cleanly_after_uploads(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], moto_server: MotoServer
) -> None:
    # GIVEN an engine process (native client threads and all) with a small and a multipart-sized file to ship
    nas = tmp_path / "nas"
    paths = [write(nas, f"{RUN}/a.txt", b"a"), write(nas, f"{RUN}/b.bin", os.urandom(6 * MIB))]
    age(*paths)
    time.sleep(0.3)
    local = {"quiet_period_s": 0.2, "index_path": str(tmp_path / "index.sqlite"), "multipart_threshold": 5 * MIB,
             "part_size": 5 * MIB}  # fmt: skip
    args = {"prefix": resource_prefix, "endpoint": moto_server.url, "nas": str(nas), "sequencers": f"{SEQ}=miseq",
            "local": local, "includes": [RUN], "finish": True}  # fmt: skip
    # WHEN it uploads, closes and returns from main
    result = subprocess.run(
        [sys.executable, "-c", CRASH_CHILD, json.dumps(args)], capture_output=True, text=True, timeout=120, check=False
    )
    # THEN the pass succeeded and the interpreter exited normally (no abort from native threads at exit)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "SUCCESS"


async def test_refreshable_credentials_are_read_at_signing_time(
    tmp_path: Path,
    resource_prefix: str,
    bootstrapped: dict[str, Any],
    proxy: CountingProxy,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN credentials that refresh (as with IRSA or an instance profile): rotated between two passes
    current = {"key": "ROTATION1"}
    asked: list[str] = []

    class Refreshing:
        refresh_needed = True

        def get_frozen_credentials(self) -> botocore.credentials.ReadOnlyCredentials:
            asked.append(current["key"])
            return botocore.credentials.ReadOnlyCredentials(current["key"], "testing", None)

    monkeypatch.setattr(backend_module, "_resolve_credentials", lambda: (Refreshing(), False))
    nas = tmp_path / "nas"
    age(write(nas, "/adhoc/one.txt", b"one"), write(nas, "/adhoc/later/two.txt", b"two"))
    backend = await factory(make_settings(tmp_path, resource_prefix, proxy.url))
    await settle()
    # WHEN a file is uploaded, the credentials rotate, and another file is uploaded
    status = await run_pass(backend, ["/adhoc/one.txt"])
    assert (status.state, status.counters.files_verified) == (TransferState.SUCCESS, 1)
    current["key"] = "ROTATION2"
    status = await run_pass(backend, ["/adhoc/later"])
    assert (status.state, status.counters.files_verified) == (TransferState.SUCCESS, 1)
    # THEN each upload was signed with the credentials current when it was signed
    puts = [key for (method, path), key in zip(proxy.requests, proxy.signed_with, strict=True) if method == "PUT"]
    assert puts == ["ROTATION1", "ROTATION2"]
    assert "ROTATION2" in asked


# -- side by side with DataSync: the same object metadata, a lifecycle class on everything ----------------------


def datasync_metadata(path: Path) -> dict[str, str]:
    """What DataSync stores as S3 user metadata for a file it copies from NFS (its user guide: modification and
    access times, UID, GID and POSIX permissions, in the keys and formats S3 File Gateway and FSx for Lustre use)."""
    st = path.stat()
    return {
        "file-mtime": f"{st.st_mtime_ns}ns",
        "file-atime": f"{st.st_atime_ns}ns",
        "file-owner": str(st.st_uid),
        "file-group": str(st.st_gid),
        "file-permissions": f"0{st.st_mode:o}",
        "user-agent": "aws-datasync",
    }


def run_folder(nas: Path) -> dict[str, Path]:
    files = {
        f"{RUN}/RunInfo.xml": b"<RunInfo/>",
        f"{RUN}/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl": os.urandom(20_000),
        f"{RUN}/InterOp/QMetricsOut.bin": os.urandom(3000),
        f"{RUN}/Analysis/1/sample.bam": os.urandom(2000),
        f"{RUN}/RTAComplete.txt": b"",
        "/adhoc/old-run/sample.bam": os.urandom(1500),
    }
    paths = {nas_path: write(nas, nas_path, data) for nas_path, data in files.items()}
    age(*paths.values())
    return paths


async def test_a_local_pass_over_objects_datasync_wrote_uploads_nothing(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run folder that DataSync already copied: objects with DataSync's metadata, no seqferry index
    nas = tmp_path / "nas"
    paths = run_folder(nas)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    s3 = sync_client("s3", settings)
    bucket = settings.names.bucket
    for nas_path, path in paths.items():
        s3.put_object(Bucket=bucket, Key=nas_path.lstrip("/"), Body=path.read_bytes(), Metadata=datasync_metadata(path))
    await settle()

    # WHEN the local engine takes over (its index rebuilt from the bucket) and runs a pass
    proxy.requests.clear()
    backend = await factory(settings)
    includes = [f"{SEQ}/2511*", "/adhoc"]
    status = await run_pass(backend, includes)

    # THEN it recognises every one of DataSync's objects (one HEAD each) and uploads nothing
    assert status.state is TransferState.SUCCESS, status.error
    assert (status.counters.files_transferred, status.counters.files_skipped) == (0, len(paths))
    assert proxy.writes() == []
    assert sum(1 for m, _ in proxy.requests if m == "HEAD") == len(paths)

    # WHEN one file changes on the NAS (same size, newer modification time)
    changed = paths[f"{RUN}/InterOp/QMetricsOut.bin"]
    changed.write_bytes(os.urandom(3000))
    age(changed, seconds=30)
    await settle()
    proxy.requests.clear()
    status = await run_pass(backend, includes)

    # THEN exactly that file is uploaded
    assert (status.counters.files_transferred, status.counters.files_skipped) == (1, len(paths) - 1)
    writes = proxy.writes()
    assert [m for m, _ in writes] == ["PUT"]
    assert writes[0][1].endswith("/InterOp/QMetricsOut.bin")
    assert s3.get_object(Bucket=bucket, Key=changed.relative_to(nas).as_posix())["Body"].read() == changed.read_bytes()


async def test_the_local_engine_writes_the_metadata_datasync_compares(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run folder, and the metadata DataSync would store for each file (taken before any read)
    nas = tmp_path / "nas"
    paths = run_folder(nas)
    os.chmod(paths[f"{RUN}/RunInfo.xml"], 0o640)
    expected = {nas_path: datasync_metadata(path) for nas_path, path in paths.items()}
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    await settle()

    # WHEN the local engine ships it
    status = await run_pass(backend, [f"{SEQ}/2511*", "/adhoc"])
    assert status.state is TransferState.SUCCESS, status.error

    # THEN every object carries exactly DataSync's fields and values (only the writer's name differs), so a
    # DataSync task in TransferMode CHANGED finds nothing to copy or to update
    s3 = sync_client("s3", settings)
    for nas_path, want in expected.items():
        got = s3.head_object(Bucket=settings.names.bucket, Key=nas_path.lstrip("/"))["Metadata"]
        assert got.pop("user-agent") == "seqferry"
        want.pop("user-agent")
        assert got == want, nas_path


async def test_everything_the_local_engine_writes_has_its_lifecycle_rule(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run folder and an ad-hoc folder shipped by the local engine
    nas = tmp_path / "nas"
    paths = run_folder(nas)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    await settle()
    assert (await run_pass(backend, [f"{SEQ}/2511*", "/adhoc"])).counters.files_verified == len(paths)

    # THEN the bucket's lifecycle configuration (read back from the emulator) moves each object as documented
    s3 = sync_client("s3", settings)
    where = {
        nas_path: object_outcome(s3, settings.names.bucket, nas_path.lstrip("/")).transitions for nas_path in paths
    }
    assert where == {
        f"{RUN}/RunInfo.xml": (("GLACIER_IR", 30),),
        f"{RUN}/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl": (("DEEP_ARCHIVE", 30),),
        f"{RUN}/InterOp/QMetricsOut.bin": (("GLACIER_IR", 30),),
        f"{RUN}/Analysis/1/sample.bam": (("DEEP_ARCHIVE", 90),),
        f"{RUN}/RTAComplete.txt": (("GLACIER_IR", 30),),
        "/adhoc/old-run/sample.bam": (),  # adhoc/ is never archived
    }


async def test_each_file_is_in_the_transfer_log_as_datasync_logs_it(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run folder with three good files and one that cannot be read
    nas = tmp_path / "nas"
    good = {f"{RUN}/Data/ok{i}.cbcl": os.urandom(1000 + i) for i in range(3)}
    age(*(write(nas, p, data) for p, data in good.items()))
    (nas / RUN.lstrip("/") / "loop").symlink_to(nas / RUN.lstrip("/") / "loop")
    settings = make_settings(tmp_path, resource_prefix, proxy.url, follow_symlinks=True)
    backend = await factory(settings)
    await settle()
    # WHEN a pass runs
    execution_id = await backend.start("t", [RUN])
    status = await wait_for(backend, execution_id)
    assert status.state is TransferState.ERROR

    # THEN its stream in the transfer log group (named after the execution) holds one line per file and result
    logs = sync_client("logs", settings)
    group = settings.names.transfer_log_group
    events = logs.get_log_events(logGroupName=group, logStreamName=execution_id, startFromHead=True)["events"]
    lines = [e["message"] for e in events]
    s3 = sync_client("s3", settings)
    for nas_path, data in good.items():
        assert f"[NOTICE] Transferred file {nas_path}, {len(data)} bytes" in lines
        checksum = s3.head_object(Bucket=settings.names.bucket, Key=nas_path.lstrip("/"), ChecksumMode="ENABLED")[
            "ChecksumCRC32C"
        ]
        assert f"[NOTICE] Verified file {nas_path}, {len(data)} bytes, crc32c {checksum}" in lines
    assert [line for line in lines if line.startswith("[ERROR]")] == [
        f"[ERROR] Failed file {RUN}/loop: symbolic link unresolvable: Too many levels of symbolic links (ELOOP)"
    ]
    assert len(lines) == 7
    # ... each stamped when it happened, during the pass
    assert all(abs(e["timestamp"] / 1000 - time.time()) < 120 for e in events)
    # AND a pass with nothing to do writes no log at all
    proxy.requests.clear()
    quiet = await run_pass(backend, [f"{RUN}/Data/"])
    assert quiet.counters.files_skipped == 3
    assert proxy.log_calls() == []


async def test_a_transfer_log_that_cannot_be_written_never_fails_the_pass(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN the transfer log group is gone (deleted, or never created in this account)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    sync_client("logs", settings).delete_log_group(logGroupName=settings.names.transfer_log_group)
    nas = tmp_path / "nas"
    age(*(write(nas, f"{RUN}/Data/f{i}.cbcl", os.urandom(500)) for i in range(3)))
    backend = await factory(settings)
    await settle()
    # WHEN a pass runs / THEN it transfers and verifies everything, and tried the log once, not once per file
    status = await run_pass(backend, [RUN])
    assert status.state is TransferState.SUCCESS, status.error
    assert status.counters.files_verified == 3
    assert len(proxy.log_calls()) <= 2 * 8  # CreateLogStream, each with the client's own retries at most


@pytest.mark.slow
async def test_files_uploaded_by_a_killed_pass_are_not_uploaded_again(
    tmp_path: Path,
    resource_prefix: str,
    bootstrapped: dict[str, Any],
    proxy: CountingProxy,
    moto_server: MotoServer,
    factory: Any,
) -> None:
    # GIVEN 40 small files and an engine process that uploads the first 25, while the rest are held
    nas = tmp_path / "nas"
    paths = [write(nas, f"{RUN}/Data/f{i:02d}.bin", os.urandom(100 + i)) for i in range(40)]
    age(*paths)
    await settle()
    local = {"quiet_period_s": 0.2, "index_path": str(tmp_path / "state" / "index.sqlite"), "concurrency": 4}
    engine_dead = threading.Event()
    dropped: list[str] = []
    uploaded: list[str] = []

    def hold_after_25(method: str, request_path: str) -> bool | None:
        if method != "PUT":
            return None
        if len(uploaded) < 25:
            uploaded.append(request_path)
            return None
        engine_dead.wait(120)
        dropped.append(request_path)
        return False

    proxy.hook = hold_after_25
    args = {"prefix": resource_prefix, "endpoint": proxy.url, "nas": str(nas), "sequencers": f"{SEQ}=miseq",
            "local": local, "includes": [RUN]}  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        execution_id = child.stdout.readline().strip()
        # WHEN the process is killed right after those uploads (before its change index was written)
        deadline = time.monotonic() + 60
        while len(uploaded) < 25 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        child.kill()
        child.wait()
        engine_dead.set()
        if child.stdout is not None:
            child.stdout.close()
    assert len(uploaded) == 25
    proxy.hook = None
    # ... and the execution is redelivered to a new engine with the same change index
    backend = await factory(make_settings(tmp_path, resource_prefix, proxy.url, **local))
    await backend.resume(execution_id, "t", [RUN])
    status = await wait_for(backend, execution_id)
    # THEN every file is in S3, and none reached S3 twice
    assert status.state is TransferState.SUCCESS, status.error
    reached = [path for method, path in proxy.requests if method == "PUT"]
    for path in set(dropped):
        reached.remove(path)
    assert sorted(reached) == sorted(set(reached))
    assert len(reached) == 40
    s3 = sync_client("s3", make_settings(tmp_path, resource_prefix, moto_server.url))
    bucket = ServiceSettings(prefix=resource_prefix).names.bucket
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"{RUN.lstrip('/')}/Data/")["Versions"]
    assert len(versions) == 40
