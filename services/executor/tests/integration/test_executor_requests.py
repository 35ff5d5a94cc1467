"""Invalid Transfer Requested / Transfer Window Opened: rejected with a reason, recorded, emitted; nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from seqferry_executor.testing.datasync_standin import DataSyncStandIn
from seqferry_shared.events.models import TransferRequested, TransferWindowOpened

pytestmark = pytest.mark.integration

BAD = {
    "r-outside": ["/etc/passwd"],
    "r-star": ["/adhoc/ok", "/sequencers/incoming/miseq/24*/RunInfo.xml"],
    "r-dotdot": ["/sequencers/incoming/miseq/../../../etc/shadow"],
    "r-pipe": ["/adhoc/a|/etc"],
    "r-nul": ["/adhoc/a\x00b"],
    "r-relative": ["sequencers/incoming/miseq/x"],
}


async def test_invalid_requests_are_rejected_recorded_and_emitted_and_valid_ones_still_run(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, tap: Any
):
    task_arn = standin.create_task()
    async with harness_for(datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn}) as h:
        # WHEN invalid requests arrive, then a valid one
        outcomes = {
            request_id: await h.orchestrator.submit_request(TransferRequested(request_id=request_id, includes=includes))
            for request_id, includes in BAD.items()
        }
        ok = await h.orchestrator.submit_request(
            TransferRequested(request_id="r-ok", includes=["/sequencers/incoming/miseq/241125_M1_1_A"])
        )

        # THEN each invalid one is rejected, and never reaches DataSync; the valid one runs
        assert set(outcomes.values()) == {"rejected"}
        assert ok == "queued"
        (start,) = standin.starts(task_arn)
        assert start["Includes"][0]["Value"] == "/sequencers/incoming/miseq/241125_M1_1_A"

        # AND each rejection is an ERROR event whose reason names the bad pattern
        details = await tap.await_for(lambda d: len(d) == len(BAD) + 1)
        errors = {d["trigger"]["id"]: d for d in details if d["state"] == "ERROR"}
        assert set(errors) == set(BAD)
        assert "include #1 '/etc/passwd': path is outside the allowed roots" in errors["r-outside"]["error"]["message"]
        assert "include #2 '/sequencers/incoming/miseq/24*/RunInfo.xml'" in errors["r-star"]["error"]["message"]
        assert "'*' allowed only as the last character" in errors["r-star"]["error"]["message"]
        assert "'..'" in errors["r-dotdot"]["error"]["message"]
        assert "'|' not allowed" in errors["r-pipe"]["error"]["message"]
        assert "'/adhoc/a\\x00b'" in errors["r-nul"]["error"]["message"]
        assert "absolute" in errors["r-relative"]["error"]["message"]
        assert {d["error"]["code"] for d in errors.values()} == {"InvalidTransferRequest"}
        assert all(d["meta"]["correlation_id"] == request_id for request_id, d in errors.items())

        # AND each is recorded in the state table with its reasons
        for request_id in BAD:
            stored = await h.store.get_request(request_id)
            assert stored is not None
            assert stored["status"] == "rejected"
            assert stored["reasons"]
        stored = await h.store.get_request("r-ok")
        assert stored is not None
        assert stored["status"] == "started"


async def test_invalid_window_is_rejected_and_recorded(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, tap: Any
):
    task_arn = standin.create_task()
    async with harness_for(datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn}) as h:
        window = TransferWindowOpened(
            task="sequencers",
            tick=7,
            window_start="2024-11-24T00:00:00+00:00",
            window_end="2024-11-25T12:00:00+00:00",
            time_zone="UTC",
            includes=["/sequencers/incoming/miseq/241125*", "/home/*"],
        )
        unknown_task = window.model_copy(update={"task": "nope", "tick": 8, "includes": ["/adhoc"]})

        assert await h.orchestrator.submit_window(window) == "rejected"
        assert await h.orchestrator.submit_window(unknown_task) == "rejected"

        details = await tap.await_for(lambda d: len(d) == 2)
        assert "include #2 '/home/*'" in details[0]["error"]["message"]
        assert "unknown task 'nope' (configured: sequencers)" in details[1]["error"]["message"]
        stored = await h.store.get_request("window#sequencers#7")
        assert stored is not None
        assert stored["kind"] == "window"
        assert stored["status"] == "rejected"
        assert standin.starts() == []


async def test_a_request_id_seen_before_is_not_run_again(
    harness_for: Callable[..., Any], standin: DataSyncStandIn, tap: Any
):
    task_arn = standin.create_task()
    async with harness_for(datasync_endpoint_url=standin.url, datasync_task_arns={"sequencers": task_arn}) as h:
        first = TransferRequested(request_id="same", includes=["/adhoc/a"])
        second = TransferRequested(request_id="same", includes=["/adhoc/b"])  # another event, same request id

        assert await h.orchestrator.submit_request(first) == "queued"
        assert await h.orchestrator.submit_request(first) == "duplicate"  # redelivery after a crash
        assert await h.orchestrator.submit_request(second) == "duplicate"

        assert len(standin.starts(task_arn)) == 1
