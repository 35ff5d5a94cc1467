"""The HTTP surface: probes, metrics, listings, 404s and a self-contained dashboard page."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import httpx
import pytest

from seqferry_shared.events.models import TransferState
from seqferry_shared.testing.motoserver import free_port

pytestmark = pytest.mark.integration


async def test_endpoints(stack, notifier_settings, start_notifier, wait_for, make_run, executor_event) -> None:
    run = make_run()
    async with start_notifier(notifier_settings()) as notifier:
        http = notifier.http
        # GIVEN probes that prove the dependencies answer
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = (await http.get("/readyz")).json()
        assert ready["status"] == "ready"
        assert {"bus", "table", "bucket", "topic", f"queue:{stack.prefix}-notifier"} <= set(ready["checks"])
        # WHEN an execution touching a run is reported
        stack.publish(executor_event("local-h", TransferState.TRANSFERRING, [run.summary(markers=())], files=3))

        async def listed() -> list | None:
            items = (await http.get("/executions")).json()["items"]
            return items or None

        items = await wait_for(listed, what="execution listed")
        # THEN the listings show it
        assert items[0]["execution_id"] == "local-h"
        assert items[0]["counters"]["files_transferred"] == 3
        runs = (await http.get("/runs", params={"limit": 5})).json()["items"]
        assert runs[0]["run"]["run_id"] == run.run_id
        assert runs[0]["status"] == "in_progress"
        assert runs[0]["s3_uri"] == f"s3://{stack.bucket}/{run.prefix}"
        dashboard = (await http.get("/api/dashboard")).json()
        assert dashboard["totals"]["files_transferred"] == 3
        assert dashboard["runs"][0]["run_id"] == run.run_id
        assert dashboard["range"] == "24h"
        # ... over any range up to four weeks, and no other
        four_weeks = (await http.get("/api/dashboard", params={"range": "28d"})).json()
        assert four_weeks["range"] == "28d"
        assert four_weeks["totals"]["files_transferred"] == 3
        assert (await http.get("/api/dashboard", params={"range": "5w"})).status_code == 422
        # AND unknown ids are 404s, bad limits 422s
        assert (await http.get("/runs/nope")).status_code == 404
        assert (await http.get("/executions/nope")).status_code == 404
        assert (await http.get("/executions", params={"limit": 0})).status_code == 422
        # AND /metrics has the notifier's own counters
        metrics = (await http.get("/metrics")).text
        assert 'seqferry_notifier_execution_observations_total{source="executor"}' in metrics
        assert "seqferry_notifier_run_listings_total" in metrics


async def test_dashboard_page_is_self_contained(stack, notifier_settings, start_notifier) -> None:
    async with start_notifier(notifier_settings(dashboard_refresh_ms=1000)) as notifier:
        response = await notifier.http.get("/")
    assert response.status_code == 200
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "const REFRESH_MS = 1000;" in page
    # No CDN, no external script, style or font: the machine running it may have no internet.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= {"http://www.w3.org/2000/svg"}
    for element in (
        "files-transferred",
        "bytes-transferred",
        "error-count",
        "runs-table",
        "errors-table",
        "timeline-chart",
        "series-chart",
        "top-files",
        "top-bytes",
        "range",
        "file-errors-table",
    ):
        assert f'id="{element}"' in page


async def test_entry_point_serves_and_stops_on_sigterm(bootstrapped, settings_env, wait_for) -> None:
    # GIVEN the notifier started the way it runs in production: its own process, configured by environment
    port = free_port()
    env = {**os.environ, **settings_env, "SEQFERRY_HTTP_PORT": str(port), "SEQFERRY_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seqferry_notifier",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            # WHEN it is up, THEN it is ready and serves the dashboard
            await wait_for(ready, timeout=30, what="notifier ready")
            assert "seqferry" in (await http.get("/")).text
        # WHEN it gets SIGTERM, THEN it drains and exits without an error (uvicorn re-raises the signal once it
        # has shut down, so the exit status reports SIGTERM)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
        assert process.stderr is not None
        errors = (await process.stderr.read()).decode()
        assert code in (0, -signal.SIGTERM), errors
        assert "Traceback" not in errors
        assert "ERROR" not in errors
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
