"""Run Transfer Completed: only when every file is in S3 with the right size, exactly once, with a manifest."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest

from seqferry_notifier.app import build_service
from seqferry_shared.events.models import ErrorInfo, FileProblem, RunSummary, TransferState
from seqferry_shared.runtime import ServiceRuntime

pytestmark = pytest.mark.integration


def completed_events(stack, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen.extend(stack.drain(stack.bus_queue_url))
    return [e for e in seen if e["detail-type"] == "Run Transfer Completed"]


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c_base64(data: bytes) -> str:
    """CRC32C as S3 reports it (big-endian, base64): a judge independent of the service and of S3."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC32C[(crc ^ byte) & 0xFF]
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def test_the_independent_crc32c_matches_the_published_check_value() -> None:
    # RFC 3720 (iSCSI) check value of CRC32C over "123456789": 0xE3069283
    assert crc32c_base64(b"123456789") == base64.b64encode(bytes.fromhex("E3069283")).decode()


async def test_complete_run_is_delivered_once_with_manifest_and_notifications(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a MiSeq run completely in the bucket and a running notifier
    run = make_run()
    run.upload(stack.s3, stack.bucket)
    async with start_notifier(notifier_settings()) as notifier:
        # WHEN the executor reports a transfer still going (marker not seen yet)
        stack.publish(executor_event("local-1", TransferState.TRANSFERRING, [run.summary(markers=())], files=5))

        async def seen_in_progress() -> dict[str, Any] | None:
            response = await notifier.http.get(f"/runs/{run.run_id}")
            return response.json() if response.status_code == 200 else None

        view = await wait_for(seen_in_progress, what="run tracked")
        assert view["status"] == "in_progress"
        assert view["marker"] == "RTAComplete.txt"
        # AND then its success, after scanning the finished folder
        success = executor_event("local-1", TransferState.SUCCESS, [run.summary()], files=len(run.files))
        stack.publish(success)

        async def delivered() -> dict[str, Any] | None:
            body = (await notifier.http.get(f"/runs/{run.run_id}")).json()
            return body if body["status"] == "completed" else None

        view = await wait_for(delivered, what="run delivered")
        # THEN the run is complete, with the right counts and a manifest next to the run folder
        completion = view["run"]["completion"]
        assert completion["files"] == len(run.files)
        assert completion["bytes"] == sum(len(b) for b in run.files.values())
        manifest_key = f"sequencers/incoming/miseq/{run.run_id}.seqferry-manifest.json"
        assert completion["manifest_uri"] == f"s3://{stack.bucket}/{manifest_key}"
        manifest = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=manifest_key)["Body"].read())
        assert manifest["files"] == len(run.files)
        assert manifest["run_id"] == run.run_id
        by_key = {o["key"][len(run.prefix) :]: o for o in manifest["objects"]}
        assert set(by_key) == set(run.files)
        for name, body in run.files.items():
            entry = by_key[name]
            assert entry["size"] == len(body)
            assert entry["checksum_algorithm"] == "CRC32C"
            # the checksum is that of the object's bytes, recomputed here independently
            assert entry["checksum"] == crc32c_base64(body), name
            assert entry["version_id"]
        # AND exactly one Run Transfer Completed is on the bus
        seen: list[dict[str, Any]] = []
        events = await wait_for(lambda: asyncio.sleep(0, completed_events(stack, seen)), what="bus event")
        detail = events[0]["detail"]
        assert detail["run_id"] == run.run_id
        assert detail["instrument"] == "miseq"
        assert detail["files"] == len(run.files)
        assert detail["checksum_manifest"] == completion["manifest_uri"]
        assert detail["executions"] == ["local-1"]
        assert detail["meta"]["correlation_id"] == "window-1"
        # AND people were told through SNS (subject + JSON body, counts only)
        notes = await wait_for(lambda: asyncio.sleep(0, stack.drain(stack.sns_queue_url)), what="SNS message")
        assert notes[0]["Subject"].startswith(f"seqferry: run {run.run_id} delivered")
        body = json.loads(notes[0]["Message"])
        assert body["type"] == "run_completed"
        assert body["files"] == len(run.files)

        # WHEN the same event is redelivered and another execution reports the same finished run
        stack.publish(success)
        stack.publish(executor_event("local-2", TransferState.SUCCESS, [run.summary(files_transferred=0)]))
        await wait_for(lambda: _exists(notifier, "local-2"), what="second execution recorded")
        await asyncio.sleep(1.5)
        # THEN nothing more is emitted
        assert len(completed_events(stack, seen)) == 1
        assert stack.drain(stack.sns_queue_url) == []
        metrics = (await notifier.http.get("/metrics")).text
        assert 'seqferry_notifier_runs_completed_total{instrument="miseq"} 1.0' in metrics
        assert 'seqferry_notifier_delivery_latency_count{instrument="miseq"} 1.0' in metrics


async def _exists(notifier: Any, execution_id: str) -> bool:
    return (await notifier.http.get(f"/executions/{execution_id}")).status_code == 200


async def test_missing_or_different_file_is_never_delivered(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a run whose last base-call file is not in S3
    run = make_run()
    last = "Data/Intensities/BaseCalls/L001/C5.1/s_1_1101.bcl"
    run.upload(stack.s3, stack.bucket, skip=(last,))
    async with start_notifier(notifier_settings()) as notifier:
        # WHEN the executor reports success for the whole folder
        stack.publish(executor_event("local-a", TransferState.SUCCESS, [run.summary()]))

        total = sum(len(b) for b in run.files.values())

        async def blocked_by(*expected: str) -> Any:
            async def probe() -> list[str] | None:
                response = await notifier.http.get(f"/runs/{run.run_id}")
                if response.status_code != 200:
                    return None
                blockers = response.json()["run"]["blockers"]
                return blockers if blockers == list(expected) else None

            return await wait_for(probe, what=f"blockers {expected!r}")

        # THEN the run waits for the missing file
        await blocked_by(
            f"S3 has {len(run.files) - 1} object(s), the run folder {len(run.files)} file(s)",
            f"S3 holds {total - len(run.files[last])} bytes, the run folder {total}",
        )

        # WHEN the file arrives with a different size (one byte short)
        run.upload(stack.s3, stack.bucket, replace={last: run.files[last][:-1]})
        stack.publish(executor_event("local-b", TransferState.SUCCESS, [run.summary()]))
        # THEN it is still not delivered: the bytes differ
        await blocked_by(f"S3 holds {total - 1} bytes, the run folder {total}")
        assert stack.drain(stack.bus_queue_url) == []

        # WHEN the right file lands and the next execution reports
        run.upload(stack.s3, stack.bucket)
        stack.publish(executor_event("local-c", TransferState.SUCCESS, [run.summary(files_transferred=1)]))

        async def delivered() -> bool:
            return (await notifier.http.get(f"/runs/{run.run_id}")).json()["status"] == "completed"

        await wait_for(delivered, what="delivery after the fix")
        seen: list[dict[str, Any]] = []
        events = await wait_for(lambda: asyncio.sleep(0, completed_events(stack, seen)), what="bus event")
        assert len(events) == 1
        assert events[0]["detail"]["executions"] == ["local-a", "local-b", "local-c"]


async def test_concurrent_handlers_emit_once(stack, notifier_settings, make_run, executor_event) -> None:
    # GIVEN two notifier replicas (own clients each, no consumers) and a run reported complete by its executions
    # while one file is still missing in S3
    run = make_run()
    last = "RunParameters.xml"
    run.upload(stack.s3, stack.bucket, skip=(last,))
    settings = notifier_settings()
    async with (
        aiohttp.ClientSession() as http,
        ServiceRuntime(settings, "notifier") as one,
        ServiceRuntime(settings, "notifier") as two,
    ):
        first, _ = await build_service(one, settings, http)
        second, _ = await build_service(two, settings, http)
        await asyncio.gather(
            first.on_execution_event(executor_event("local-x", TransferState.SUCCESS, [run.summary()])),
            second.on_execution_event(executor_event("local-x", TransferState.SUCCESS, [run.summary()])),
        )
        pending = await first.run(run.run_id)
        assert pending is not None
        assert pending.completion is None
        builds = {id(first): 0, id(second): 0}
        for replica in (first, second):
            build = replica._storage.manifest_entries

            async def counted(keys: list[str], replica: Any = replica, build: Any = build) -> Any:
                builds[id(replica)] += 1
                await asyncio.sleep(0.3)  # a large run: building takes long enough for the others to arrive
                return await build(keys)

            replica._storage.manifest_entries = counted  # type: ignore[method-assign]
        # WHEN the file lands and six handlers on both replicas decide at the same moment
        run.upload(stack.s3, stack.bucket)
        verdicts = await asyncio.gather(*(replica.evaluate_run(pending) for replica in (first, second) * 3))
        # THEN each replica built the checksum manifest at most once (its other handlers waited for it)
        assert all(count <= 1 for count in builds.values()), builds
        # THEN every one of them found the run complete, yet only one announced it
        assert all(v is not None and v.complete for v in verdicts)
        # AND later reports (another execution, a redelivery) change nothing
        await asyncio.gather(
            first.on_execution_event(executor_event("local-y", TransferState.SUCCESS, [run.summary()])),
            second.on_execution_event(executor_event("local-y", TransferState.SUCCESS, [run.summary()])),
        )
        delivered = await second.run(run.run_id)
    assert delivered is not None
    assert delivered.completion is not None
    await asyncio.sleep(0.5)
    events = [e for e in stack.drain(stack.bus_queue_url) if e["detail-type"] == "Run Transfer Completed"]
    assert len(events) == 1
    assert events[0]["detail"]["meta"]["event_id"] == delivered.completion.event_id
    notes = [n for n in stack.drain(stack.sns_queue_url) if json.loads(n["Message"])["type"] == "run_completed"]
    assert len(notes) == 1


async def test_execution_error_fails_the_run_and_notifies(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a run being transferred
    run = make_run()
    run.upload(stack.s3, stack.bucket, skip=("RTAComplete.txt",))
    async with start_notifier(notifier_settings()) as notifier:
        stack.publish(executor_event("local-e", TransferState.TRANSFERRING, [run.summary(markers=())]))
        # WHEN the execution fails (its message names a sample, which must not reach people)
        error = ErrorInfo(code="SourceChanged", message=f"{run.nas_path}/SAMPLE_SECRET_1.fastq.gz changed")
        stack.publish(executor_event("local-e", TransferState.ERROR, [run.summary(markers=())], error=error))

        # THEN Run Transfer Failed goes on the bus, with the reason and the error
        seen: list[dict[str, Any]] = []

        async def failed() -> list[dict[str, Any]]:
            seen.extend(stack.drain(stack.bus_queue_url))
            return [e for e in seen if e["detail-type"] == "Run Transfer Failed"]

        events = await wait_for(failed, what="Run Transfer Failed")
        assert events[0]["detail"]["reason"] == "execution_error"
        assert events[0]["detail"]["error"]["code"] == "SourceChanged"
        # AND people get one message for the run and one for the execution, without the sample name
        notes: list[dict[str, Any]] = []

        async def two_notes() -> list[dict[str, Any]] | None:
            notes.extend(stack.drain(stack.sns_queue_url))
            return notes if len(notes) >= 2 else None

        await wait_for(two_notes, what="two SNS messages")
        kinds = sorted(json.loads(n["Message"])["type"] for n in notes)
        assert kinds == ["execution_failed", "run_failed"]
        assert all("SAMPLE_SECRET" not in n["Message"] + n["Subject"] for n in notes)
        view = (await notifier.http.get(f"/runs/{run.run_id}")).json()
        assert view["status"] == "failed"
        assert view["run"]["failed_executions"] == ["local-e"]


async def test_a_standing_file_problem_fails_the_run_once_and_stays_on_the_dashboard(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a run whose folder holds a FIFO: the first pass reports it as ERROR, the next ones again as SUCCESS
    run = make_run()
    run.upload(stack.s3, stack.bucket, skip=("RTAComplete.txt",))
    fifo = FileProblem(path=f"{run.nas_path}/pipe", reason="FIFO (named pipe): not a regular file, not read")
    scan = run.summary(files_failed=1)
    async with start_notifier(notifier_settings()) as notifier:
        first = executor_event(
            "local-p1", TransferState.ERROR, [scan], error=ErrorInfo(code="FilesFailed", message="1")
        )
        standing = {"problems": [fifo], "counters": first.counters.model_copy(update={"files_failed": 1})}
        stack.publish(first.model_copy(update=standing))
        for n in (2, 3):
            later = executor_event(f"local-p{n}", TransferState.SUCCESS, [scan], files=len(run.files))
            stack.publish(later.model_copy(update=standing))

        async def dashboard_lists_it() -> dict[str, Any] | None:
            body = (await notifier.http.get("/api/dashboard")).json()
            latest = {r["execution_id"] for r in body["file_errors"]}
            return body if latest == {"local-p3"} else None

        # THEN the dashboard's per-file view lists the FIFO once (its newest report) and the run is failed
        body = await wait_for(dashboard_lists_it, what="problem on the dashboard")
        assert [(p["path"], p["reason"]) for p in body["file_errors"]] == [(fifo.path, fifo.reason)]
        assert body["file_errors_total"] == 1
        view = (await notifier.http.get(f"/runs/{run.run_id}")).json()
        assert view["status"] == "failed"
        execution = (await notifier.http.get("/executions/local-p3")).json()
        assert execution["problems"] == [fifo.model_dump()]
        # AND Run Transfer Failed was announced once (by the ERROR), not once per pass; one alert each
        seen: list[dict[str, Any]] = []

        async def failed() -> list[dict[str, Any]]:
            seen.extend(stack.drain(stack.bus_queue_url))
            return [e for e in seen if e["detail-type"] == "Run Transfer Failed"]

        await wait_for(failed, what="Run Transfer Failed")
        notes: list[dict[str, Any]] = []

        async def two_notes() -> list[dict[str, Any]] | None:
            notes.extend(stack.drain(stack.sns_queue_url))
            return notes if len(notes) >= 2 else None

        await wait_for(two_notes, what="two SNS messages")
        await asyncio.sleep(1.0)  # anything announced for the later passes would have arrived with these
        notes.extend(stack.drain(stack.sns_queue_url))
        assert [e["detail"]["executions"] for e in await failed()] == [["local-p1"]]
        assert not [e for e in seen if e["detail-type"] == "Run Transfer Completed"]
        assert sorted(json.loads(n["Message"])["type"] for n in notes) == ["execution_failed", "run_failed"]


async def test_a_spoofed_run_summary_never_lists_the_bucket_nor_announces_anything(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a bucket holding a real run and other data, and a completion marker at its top
    run = make_run()
    run.upload(stack.s3, stack.bucket, skip=("RTAComplete.txt",))
    stack.s3.put_object(Bucket=stack.bucket, Key="hr/private/salaries.csv", Body=b"name,salary\n")
    stack.s3.put_object(Bucket=stack.bucket, Key="CopyComplete.txt", Body=b"")
    listing = stack.s3.list_objects_v2(Bucket=stack.bucket)["Contents"]
    # ... and an event claiming to be the executor's, whose run summary points at the whole bucket and matches it
    fake = RunSummary(
        run_id="everything", nas_path="/", s3_prefix="", files_total=len(listing),
        bytes_total=sum(o["Size"] for o in listing), markers=["CopyComplete.txt"],
    )  # fmt: skip
    foreign = RunSummary(run_id="private", nas_path="/hr/private", s3_prefix="hr/private/", files_total=1)
    async with start_notifier(notifier_settings(check_cycles=False)) as notifier:
        # WHEN it arrives (with a genuine summary of the real run beside the fake ones)
        stack.publish(executor_event("local-x", TransferState.SUCCESS, [fake, foreign, run.summary(markers=())]))

        async def real_run_tracked() -> dict[str, Any] | None:
            response = await notifier.http.get(f"/runs/{run.run_id}")
            return response.json() if response.status_code == 200 else None

        await wait_for(real_run_tracked, what="the genuine summary")
        # THEN the fake summaries are refused with the reason logged, no run is made of them, nothing announced
        assert (await notifier.http.get("/runs/everything")).status_code == 404
        assert (await notifier.http.get("/runs/private")).status_code == 404
        assert "run summary refused: nas_path '/' is not under a configured sequencer path" in caplog.text
        assert "run summary refused: nas_path '/hr/private'" in caplog.text
        runs = (await notifier.http.get("/runs")).json()
        assert [r["run"]["run_id"] for r in runs["items"]] == [run.run_id]
        await asyncio.sleep(1.0)
        seen = stack.drain(stack.bus_queue_url)
        assert not [e for e in seen if e["detail-type"] == "Run Transfer Completed"]
        manifests = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="everything").get("Contents", [])
        assert manifests == []


async def test_stalled_run_is_reported_once(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a notifier with a short stall deadline and a run that stops growing
    run = make_run()
    run.upload(stack.s3, stack.bucket, skip=("RTAComplete.txt",))
    async with start_notifier(notifier_settings(stall_deadline_s=1.0)) as notifier:
        stack.publish(executor_event("local-s", TransferState.SUCCESS, [run.summary(markers=())]))
        seen: list[dict[str, Any]] = []

        async def stalled() -> list[dict[str, Any]]:
            seen.extend(stack.drain(stack.bus_queue_url))
            return [e for e in seen if e["detail-type"] == "Run Transfer Failed"]

        # WHEN the deadline passes; THEN one stalled failure is announced, and not again on later sweeps
        events = await wait_for(stalled, what="stalled failure")
        assert events[0]["detail"]["reason"] == "stalled"
        await asyncio.sleep(2.0)
        assert len(await stalled()) == 1
        view = (await notifier.http.get(f"/runs/{run.run_id}")).json()
        assert view["status"] == "stalled"


async def test_objects_landing_after_the_last_report_are_found_by_the_sweeper(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN the last execution reported the run done while one object was not yet listable in S3
    run = make_run()
    run.upload(stack.s3, stack.bucket, skip=("RTAComplete.txt",))
    async with start_notifier(notifier_settings(recheck_interval_s=0.5)) as notifier:
        stack.publish(executor_event("local-r", TransferState.SUCCESS, [run.summary()]))

        async def status() -> str | None:
            response = await notifier.http.get(f"/runs/{run.run_id}")
            return response.json()["status"] if response.status_code == 200 else None

        assert await wait_for(status, what="run tracked") == "in_progress"
        # WHEN the object appears, with no further report
        run.upload(stack.s3, stack.bucket)
        # THEN the sweeper's recheck delivers the run
        await wait_for(lambda: _is(status, "completed"), what="delivered by the recheck")


async def _is(probe: Any, expected: str) -> bool:
    return bool(await probe() == expected)


STOPPED = (
    b'<?xml version="1.0"?>\r\n<RunCompletionStatus>\r\n    <Version>1</Version>\r\n'
    b"    <CompletionStatus>UserEndedEarly</CompletionStatus>\r\n"
    b"    <ErrorDescription>Run stopped by the user</ErrorDescription>\r\n</RunCompletionStatus>\r\n"
)


@pytest.mark.parametrize("explicit", [True, False], ids=["status-file", "cycles-missing"])
async def test_a_stopped_run_ends_reported_not_pending(
    explicit: bool, stack, notifier_settings, start_notifier, wait_for, make_run, executor_event
) -> None:
    # GIVEN a run the operator stopped after 3 of its 5 cycles: the marker was written and every file the
    # instrument wrote is in S3, with RunCompletionStatus.xml saying so (or, on instruments without one, not)
    run = make_run()
    for cycle in (4, 5):
        for suffix in ("bcl", "stats"):
            del run.files[f"Data/Intensities/BaseCalls/L001/C{cycle}.1/s_1_1101.{suffix}"]
    if explicit:
        run.files["RunCompletionStatus.xml"] = STOPPED
    run.upload(stack.s3, stack.bucket)
    async with start_notifier(notifier_settings(incomplete_grace_s=0 if not explicit else 3600)) as notifier:
        # WHEN the executor reports the finished folder
        markers = ("RTAComplete.txt", "RunCompletionStatus.xml") if explicit else ("RTAComplete.txt",)
        stack.publish(executor_event("local-stop", TransferState.SUCCESS, [run.summary(markers=markers)]))

        async def settled() -> dict[str, Any] | None:
            response = await notifier.http.get(f"/runs/{run.run_id}")
            body = response.json() if response.status_code == 200 else None
            return body if body and body["status"] == "incomplete" else None

        # THEN the run is settled as incomplete, not left pending until the stall deadline
        view = await wait_for(settled, what="run reported incomplete")
        outcome = view["run"]["incomplete"]["outcome"]
        assert outcome["status"] == ("UserEndedEarly" if explicit else "Incomplete")
        assert (outcome["cycles_planned"], outcome["cycles_completed"]) == (5, 3)
        # AND exactly one Run Transfer Failed says why, with a manifest of what was delivered
        seen: list[dict[str, Any]] = []

        async def failed() -> list[dict[str, Any]]:
            seen.extend(stack.drain(stack.bus_queue_url))
            return [e for e in seen if e["detail-type"] == "Run Transfer Failed"]

        (event,) = await wait_for(failed, what="Run Transfer Failed")
        detail = event["detail"]
        assert detail["reason"] == "sequencing_incomplete"
        assert detail["sequencing"]["status"] == outcome["status"]
        assert detail["files"] == len(run.files)
        manifest_key = detail["checksum_manifest"].removeprefix(f"s3://{stack.bucket}/")
        manifest = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=manifest_key)["Body"].read())
        assert manifest["files"] == len(run.files)
        # ... never a Run Transfer Completed, and nothing more on a redelivery
        stack.publish(executor_event("local-stop-2", TransferState.SUCCESS, [run.summary(markers=markers)]))
        await wait_for(lambda: _exists(notifier, "local-stop-2"), what="second execution recorded")
        await asyncio.sleep(1.0)
        assert [e for e in await failed() if e["detail-type"] != "Run Transfer Failed"] == []
        assert len(await failed()) == 1
        assert not any(e["detail-type"] == "Run Transfer Completed" for e in seen)
        notes = await wait_for(lambda: asyncio.sleep(0, stack.drain(stack.sns_queue_url)), what="SNS message")
        assert "ended the run early" in json.loads(notes[0]["Message"])["text"]
