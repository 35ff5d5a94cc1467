"""The local engine against a hostile NAS: links out of the allowed roots, files and folders swapped between the scan
and the read, names that are not UTF-8, FIFOs, sockets, devices, unreadable, vanishing and shrinking files, sparse
files and deep trees. Each is handled per file and reported with its path and reason; the rest of the run goes."""

from __future__ import annotations

import ctypes
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from local_support import RUN, RUN_ID, SEQ, CountingProxy, age, make_settings, run_pass, settle, write

from seqferry_executor.backends.local.config import MIB
from seqferry_executor.backends.local.scan import FolderScan
from seqferry_shared.aws import sync_client
from seqferry_shared.events.models import TransferState

pytestmark = pytest.mark.integration

# The reasons people read on the dashboard and in the execution's error (documented in the executor's README).
SYMLINK_NOT_FOLLOWED = "symbolic link, not followed (SEQFERRY_LOCAL__FOLLOW_SYMLINKS is off)"
SYMLINK_ESCAPE = "symbolic link to a target outside the allowed roots, not followed"
REPLACED_BY_LINK = "replaced by a symbolic link since the scan, not read"
KEY_TOO_LONG = "path longer than S3's 1,024-byte key limit, not transferred"

SECRET = b"name,salary\nA. Director,250000\n"
LATER_LOG = b"a later version of the run log\n"
OTHER_RUN = f"{SEQ}/251126_M00123_0002_000000000-FGHIJ"


def keys(settings: Any) -> set[str]:
    s3 = sync_client("s3", settings)
    return {o["Key"] for o in s3.list_objects_v2(Bucket=settings.names.bucket).get("Contents", [])}


def bodies(settings: Any) -> dict[str, bytes]:
    s3 = sync_client("s3", settings)
    return {key: s3.get_object(Bucket=settings.names.bucket, Key=key)["Body"].read() for key in keys(settings)}


def problems(status: Any) -> dict[str, str]:
    return {p.path: p.reason for p in status.problems}


def lab(nas: Path, *, links: bool = False) -> Path:
    """A run folder next to another department's share, inside the same NAS mount; with ``links``, someone who can
    write into the run folder placed a file link and a folder link to the share in it. Returns the run folder."""
    written = [
        write(nas, "/hr/private/salaries.csv", SECRET),
        write(nas, "/hr/private/bonus.csv", SECRET),
        write(nas, f"{RUN}/RunInfo.xml", b"<RunInfo/>"),
        write(nas, f"{RUN}/Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl", os.urandom(3000)),
        write(nas, f"{OTHER_RUN}/SampleSheet.csv", b"[Header]\n"),
    ]
    age(*written)
    run = nas / RUN.lstrip("/")
    if links:
        (run / "innocent.csv").symlink_to("../../../../hr/private/salaries.csv")
        (run / "hrdir").symlink_to("../../../../hr")
    return run


async def test_symlinks_are_not_followed_by_default_and_are_reported_per_file(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN someone who can write into a run folder placed a file link and a folder link to the HR share
    lab(tmp_path / "nas", links=True)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    await settle()
    # WHEN a pass covers the run
    status = await run_pass(backend, [f"{SEQ}/2511*"])
    # THEN no byte of the HR share is in the bucket, both links are reported with their reason, the rest went
    assert all(SECRET not in body for body in bodies(settings).values())
    assert not any("salaries" in k or "hrdir" in k or "bonus" in k for k in keys(settings))
    assert problems(status) == {f"{RUN}/innocent.csv": SYMLINK_NOT_FOLLOWED, f"{RUN}/hrdir": SYMLINK_NOT_FOLLOWED}
    assert status.counters.files_failed == 2
    assert status.state is TransferState.ERROR
    assert status.error is not None
    assert f"{RUN}/innocent.csv: {SYMLINK_NOT_FOLLOWED}" in status.error.message
    assert (status.counters.files_transferred, status.counters.files_verified) == (3, 3)
    run_summary = next(r for r in status.runs if r.run_id == RUN_ID)
    assert run_summary.files_failed == 2


async def test_when_followed_a_link_is_read_only_if_its_target_is_under_an_allowed_root(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN links into the HR share (inside the NAS mount, outside the sequencer paths) and one into another run
    run = lab(tmp_path / "nas", links=True)
    (run / "SampleSheet.csv").symlink_to(f"../{OTHER_RUN.rsplit('/', 1)[1]}/SampleSheet.csv")
    settings = make_settings(tmp_path, resource_prefix, proxy.url, follow_symlinks=True)
    backend = await factory(settings)
    await settle()
    # WHEN a pass covers the run with links followed
    status = await run_pass(backend, [RUN])
    # THEN the link into the other run is read through, the links into HR are refused
    assert problems(status) == {f"{RUN}/innocent.csv": SYMLINK_ESCAPE, f"{RUN}/hrdir": SYMLINK_ESCAPE}
    stored = bodies(settings)
    assert stored[f"{RUN}/SampleSheet.csv".lstrip("/")] == b"[Header]\n"
    assert all(SECRET not in body for body in stored.values())


async def test_a_file_and_a_folder_swapped_for_links_between_scan_and_read_are_never_read_through(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run whose files are scanned as ordinary files ...
    nas = tmp_path / "nas"
    lab(nas)
    swapped_file = write(nas, f"{RUN}/SampleSheet.csv", b"Sample_ID\nS1\n")
    folder_file = write(nas, f"{RUN}/Config/Effective.cfg", b"setting=1\n")
    replaced = write(nas, f"{RUN}/Logs/run.log", b"first version\n")
    age(swapped_file, folder_file, replaced)
    (nas / "hr/private/Effective.cfg").write_bytes(SECRET)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    scanner = backend._engine._scanner
    original_walk = scanner.walk

    def scan_then_swap(*args: Any) -> Iterator[FolderScan]:
        result = list(original_walk(*args))  # the whole walk first
        # ... and swapped once the scan is done: a file for a link to the HR share, a parent folder for a link
        # to the HR folder holding a file of the same name, and a file for another ordinary file.
        swapped_file.unlink()
        swapped_file.symlink_to(nas / "hr/private/salaries.csv")
        folder = folder_file.parent
        folder.rename(folder.with_name("Config.old"))
        folder.symlink_to(nas / "hr/private")
        replaced.rename(replaced.with_name("run.log.old"))
        replaced.write_bytes(LATER_LOG)
        return iter(result)

    scanner.walk = scan_then_swap  # type: ignore[method-assign]
    await settle()
    # WHEN the pass uploads
    status = await run_pass(backend, [RUN])
    # THEN nothing was read through a link: the two swaps are reported; the replaced file was not read as the one
    # scanned, but the new file at its path, watched while the pass lingered, went once it had settled
    stored = bodies(settings)
    assert all(SECRET not in body for body in stored.values())
    assert problems(status) == {
        f"{RUN}/SampleSheet.csv": REPLACED_BY_LINK,
        f"{RUN}/Config/Effective.cfg": REPLACED_BY_LINK,
    }
    assert stored[f"{RUN}/Logs/run.log".lstrip("/")] == LATER_LOG
    assert next(r for r in status.runs if r.run_id == RUN_ID).files_pending == 0


async def test_a_file_swapped_while_its_parts_are_uploading_is_read_from_the_file_that_was_checked(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a multipart-sized file, and an attacker who swaps the file for a link and its folder for a link to
    # the HR share (with a same-named file of the same size) once the upload has begun, before any part is read
    nas = tmp_path / "nas"
    lab(nas)
    data = os.urandom(12 * MIB)
    big = write(nas, f"{RUN}/Data/big.bin", data)
    age(big)
    fake = nas / "hr/private/big.bin"
    fake.write_bytes(b"S" * len(data))
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    backend = await factory(settings)
    await settle()

    def swap_on_first_part(method: str, request_path: str) -> None:
        if method == "POST" and "uploads" in parse_qs(urlsplit(request_path).query, keep_blank_values=True):
            proxy.hook = None
            folder = big.parent
            big.rename(folder / "big.bin.orig")
            big.symlink_to(fake)
            folder.rename(folder.with_name("Data.orig"))
            folder.symlink_to(fake.parent)

    proxy.hook = swap_on_first_part
    # WHEN the pass uploads it
    status = await run_pass(backend, [f"{RUN}/Data"])
    # THEN every part came from the file that was scanned and opened, never from the link's target
    assert status.state is TransferState.SUCCESS, status.error
    s3 = sync_client("s3", settings)
    body = s3.get_object(Bucket=settings.names.bucket, Key=f"{RUN}/Data/big.bin".lstrip("/"))["Body"].read()
    assert body == data


async def test_a_name_that_is_not_utf8_is_transferred_under_an_escaped_key_and_the_rest_go(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a small folder with a good file and a file named with a byte that is not UTF-8 (Windows tools on SMB)
    nas = tmp_path / "nas"
    folder = nas / RUN.lstrip("/") / "Analysis"
    folder.mkdir(parents=True)
    good = write(nas, f"{RUN}/Analysis/good.txt", b"good")
    raw_name = b"bad\xffname.bin"
    bad = Path(os.fsdecode(os.fsencode(folder) + b"/" + raw_name))
    bad.write_bytes(b"latin-1 named")
    age(good, bad)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    await settle()
    # WHEN a pass covers the folder
    status = await run_pass(backend, [f"{RUN}/Analysis"])
    # THEN both arrive: the odd name under its escaped key, with the exact original bytes in the object metadata
    assert status.state is TransferState.SUCCESS, status.error
    assert (status.counters.files_transferred, status.counters.files_verified) == (2, 2)
    escaped = f"{RUN}/Analysis/bad%FFname.bin".lstrip("/")
    assert keys(settings) == {f"{RUN}/Analysis/good.txt".lstrip("/"), escaped}
    s3 = sync_client("s3", settings)
    obj = s3.get_object(Bucket=settings.names.bucket, Key=escaped)
    assert obj["Body"].read() == b"latin-1 named"
    original = obj["Metadata"]["seqferry-nas-path"]
    assert original == quote(os.fsencode(f"{RUN}/Analysis/") + raw_name, safe="/")
    # ... and a second pass knows it: nothing is sent again
    proxy.requests.clear()
    again = await run_pass(backend, [f"{RUN}/Analysis"])
    assert (again.state, again.counters.files_skipped, proxy.requests) == (TransferState.SUCCESS, 2, [])


def special_entries(run: Path) -> dict[str, str]:
    """A FIFO, a socket and (where this process may create one) a device node; their expected reasons."""
    expected = {f"{RUN}/pipe": "FIFO (named pipe): not a regular file, not read"}
    os.mkfifo(run / "pipe")
    # A socket's path is limited to 107 bytes: bind it at a short path, then move it into the run folder.
    short = Path(f"/tmp/seqferry-{os.getpid()}-{id(run)}.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(short))
    short.rename(run / "socket")
    expected[f"{RUN}/socket"] = "socket: not a regular file, not read"
    try:
        os.mknod(run / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        expected[f"{RUN}/null"] = "character device: not a regular file, not read"
    except PermissionError:
        pass  # no CAP_MKNOD here: the FIFO and the socket still prove the point
    return expected


async def test_odd_entries_are_handled_per_file_and_a_standing_problem_is_an_error_once(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a run folder with ordinary files, a completion marker, special files, names with a newline and a
    # control character, a 255-byte name and a sparse file
    nas = tmp_path / "nas"
    run = nas / RUN.lstrip("/")
    ordinary = {
        f"{RUN}/RunInfo.xml": b"<RunInfo/>",
        f"{RUN}/line\nbreak.txt": b"newline in the name",
        f"{RUN}/bell\x07.txt": b"control character in the name",
        f"{RUN}/" + "n" * 251 + ".txt": b"255-byte name",
        f"{RUN}/RTAComplete.txt": b"",
    }
    paths = [write(nas, p, data) for p, data in ordinary.items()]
    sparse = run / "sparse.bin"
    with sparse.open("wb") as handle:
        handle.seek(7 * MIB)
        handle.write(b"end")
    paths.append(sparse)
    age(*paths)
    expected_problems = special_entries(run)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    backend = await factory(settings)
    await settle()

    # WHEN a pass runs (it must end, whatever the FIFO does)
    first = await run_pass(backend, [RUN])

    # THEN every special file is reported by path and reason, never opened; every ordinary file arrived, the odd
    # names under keys with the control characters escaped; the marker is held back (the run is not complete)
    assert problems(first) == expected_problems
    assert first.state is TransferState.ERROR
    assert first.counters.files_failed == len(expected_problems)
    stored = bodies(settings)
    assert stored[f"{RUN}/line%0Abreak.txt".lstrip("/")] == b"newline in the name"
    assert stored[f"{RUN}/bell%07.txt".lstrip("/")] == b"control character in the name"
    assert stored[(f"{RUN}/" + "n" * 251 + ".txt").lstrip("/")] == b"255-byte name"
    assert stored[f"{RUN}/sparse.bin".lstrip("/")] == bytes(7 * MIB) + b"end"
    assert f"{RUN}/RTAComplete.txt".lstrip("/") not in stored
    (summary,) = first.runs
    assert summary.files_failed == len(expected_problems)

    # WHEN the next passes meet the same, unchanged problems
    second = await run_pass(backend, [RUN])
    # THEN they are still counted and listed, but the pass is not another ERROR: they were reported once
    assert second.state is TransferState.SUCCESS, second.error
    assert problems(second) == expected_problems
    assert second.counters.files_failed == len(expected_problems)
    assert second.runs[0].files_failed == len(expected_problems)

    # WHEN the lab removes them
    for nas_path in expected_problems:
        (nas / nas_path.lstrip("/")).unlink()
    third = await run_pass(backend, [RUN])
    # THEN nothing is reported and the marker goes last: the run is complete
    assert (third.state, third.problems, third.counters.files_failed) == (TransferState.SUCCESS, [], 0)
    assert f"{RUN}/RTAComplete.txt".lstrip("/") in keys(settings)


async def test_deep_trees_report_what_cannot_be_a_key_and_ship_the_rest(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a tree 60 folders deep (over S3's 1,024-byte key limit), with a file near the top and one at the bottom
    nas = tmp_path / "nas"
    top = write(nas, f"{RUN}/Analysis/top.txt", b"top")
    deep = f"{RUN}/Analysis/" + "/".join(f"level-{i:02d}-xxxxxxxxxx" for i in range(60))
    bottom = write(nas, f"{deep}/bottom.txt", b"bottom")
    age(top, bottom)
    settings = make_settings(tmp_path, resource_prefix, proxy.url)
    backend = await factory(settings)
    await settle()
    # WHEN a pass covers it THEN it ends; the folder where keys get too long is reported once, the top file went
    status = await run_pass(backend, [f"{RUN}/Analysis"])
    assert keys(settings) == {f"{RUN}/Analysis/top.txt".lstrip("/")}
    ((path, reason),) = problems(status).items()
    assert reason == KEY_TOO_LONG
    assert deep.startswith(path)
    assert len(path.encode()) > 1024


async def test_a_file_that_shrinks_mid_upload_is_not_verified_and_is_shipped_again_when_stable(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy, factory: Any
) -> None:
    # GIVEN a multipart-sized file that is truncated while its second part is on the wire
    nas = tmp_path / "nas"
    data = os.urandom(12 * MIB)
    path = write(nas, f"{RUN}/Data/shrinking.bin", data)
    age(path)
    settings = make_settings(tmp_path, resource_prefix, proxy.url, multipart_threshold=5 * MIB, part_size=5 * MIB)
    backend = await factory(settings)
    await settle()

    def truncate_on_second_part(method: str, request_path: str) -> None:
        if parse_qs(urlsplit(request_path).query).get("partNumber") == ["2"]:
            proxy.hook = None
            os.truncate(path, 1000)

    proxy.hook = truncate_on_second_part
    # WHEN the pass uploads it
    status = await run_pass(backend, [RUN])
    # THEN the pass ends; the file is neither verified nor failed but pending (it changed), no upload is left
    assert status.state is TransferState.SUCCESS, status.error
    assert (status.counters.files_verified, status.counters.files_failed) == (0, 0)
    assert status.runs[0].files_pending == 1
    s3 = sync_client("s3", settings)
    assert s3.list_multipart_uploads(Bucket=settings.names.bucket).get("Uploads", []) == []
    # WHEN it is quiet again THEN the next pass ships what the file is now, verified
    await settle()
    again = await run_pass(backend, [RUN])
    assert (again.state, again.counters.files_verified) == (TransferState.SUCCESS, 1)
    assert bodies(settings) == {f"{RUN}/Data/shrinking.bin".lstrip("/"): data[:1000]}


UNPRIVILEGED_CHILD = """
import asyncio, json, sys
from pathlib import Path
from seqferry_shared.aws import ClientFactory
from seqferry_executor.backends.local import LocalBackend, LocalBackendConfig
from seqferry_executor.settings import ExecutorSettings

async def main():
    args = json.loads(sys.argv[1])
    settings = ExecutorSettings(
        prefix=args["prefix"], environment="test", aws_endpoint_url=args["endpoint"], nas_root=Path(args["nas"]),
        sequencer_paths=args["sequencers"], local=LocalBackendConfig(**args["local"]),
    )
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        execution_id = await backend.start("t", args["includes"])
        while not (status := await backend.describe(execution_id)).state.terminal:
            await asyncio.sleep(0.05)
        await backend.close()
    print(json.dumps({"state": status.state.value, "failed": status.counters.files_failed,
                      "verified": status.counters.files_verified,
                      "problems": {p.path: p.reason for p in status.problems}}))

asyncio.run(main())
"""

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def without_file_permission_override() -> None:
    """In the child before exec: root keeps its uid but loses the capabilities that ignore file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_file_is_reported_and_the_rest_go(
    tmp_path: Path, resource_prefix: str, bootstrapped: dict[str, Any], proxy: CountingProxy
) -> None:
    # GIVEN a run folder with a file nobody may read, and an engine process that file permissions apply to (root
    # runs it without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, as an executor in a locked-down pod would)
    nas = tmp_path / "nas"
    readable = write(nas, f"{RUN}/RunInfo.xml", b"<RunInfo/>")
    locked = write(nas, f"{RUN}/InterOp/locked.bin", b"private")
    age(readable, locked)
    locked.chmod(0)
    (tmp_path / "state").mkdir()
    local = {"quiet_period_s": 0.0, "hold_s": 0, "index_path": str(tmp_path / "state" / "index.sqlite")}
    args = {"prefix": resource_prefix, "endpoint": proxy.url, "nas": str(nas), "sequencers": f"{SEQ}=miseq",
            "local": local, "includes": [RUN]}  # fmt: skip
    # WHEN the engine runs a pass
    result = subprocess.run(
        [sys.executable, "-c", UNPRIVILEGED_CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=without_file_permission_override if os.geteuid() == 0 else None,
    )
    # THEN the locked file is reported as unreadable, the other one went
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["problems"] == {f"{RUN}/InterOp/locked.bin": "file unreadable: Permission denied (EACCES)"}
    assert (outcome["state"], outcome["failed"], outcome["verified"]) == ("ERROR", 1, 1)
