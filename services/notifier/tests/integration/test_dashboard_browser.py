"""The dashboard in headless Chromium (DevTools Protocol over a websocket): numbers change live, no reload."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from seqferry_shared.events.models import ErrorInfo, TransferState

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="headless Chromium missing: apt-get install -y chromium chromium-driver (make test does)",
    ),
]


class Page:
    """One browser tab driven over the DevTools Protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self._ws.send_json({"id": message_id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), timeout=20)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def text(self, element_id: str) -> str | None:
        return await self.evaluate(f"document.getElementById({json.dumps(element_id)})?.dataset.value ?? null")


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1400,1100",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        for _ in range(300):
            if active.exists() and active.read_text().count("\n") >= 1:
                break
            if process.returncode is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            await asyncio.sleep(0.05)
        port = int(active.read_text().splitlines()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_dashboard_numbers_change_live(
    stack, notifier_settings, start_notifier, wait_for, make_run, executor_event, tmp_path: Path
) -> None:
    run = make_run()
    async with (
        start_notifier(notifier_settings(dashboard_refresh_ms=500)) as notifier,
        chromium(tmp_path / "profile") as page,
    ):
        # GIVEN the dashboard open in the browser, nothing transferred yet
        await page.call("Page.navigate", url=notifier.url + "/")

        async def shows(element_id: str, value: str) -> bool:
            return await page.text(element_id) == value

        await wait_for(lambda: shows("files-transferred", "0"), what="dashboard loaded")
        assert await page.text("error-count") == "0"
        # WHEN an execution reports progress
        summary = run.summary(markers=(), files_transferred=5)
        stack.publish(executor_event("local-live", TransferState.TRANSFERRING, [summary], files=5))
        # THEN the page shows it without a reload
        await wait_for(lambda: shows("files-transferred", "5"), what="5 files on the page")
        assert await page.text("bytes-transferred") == "500"
        # WHEN it progresses further and another execution fails
        stack.publish(executor_event("local-live", TransferState.TRANSFERRING, [summary], files=12))
        stack.publish(
            executor_event(
                "local-bad",
                TransferState.ERROR,
                files=1,
                error=ErrorInfo(
                    code="FilesFailed",
                    message=f"1 file(s) failed: {run.nas_path}/Data/x.cbcl: "
                    "file unreadable: Permission denied (EACCES)",
                ),
            )
        )
        # THEN the numbers, the errors table and the run's progress change in place
        await wait_for(lambda: shows("files-transferred", "13"), what="13 files on the page")
        await wait_for(lambda: shows("error-count", "1"), what="one error on the page")
        errors = await page.evaluate("document.getElementById('errors-table').innerText")
        assert "local-bad" in errors
        assert "FilesFailed" in errors
        # AND the per-file error view names the file and why
        file_errors = await page.evaluate("document.getElementById('file-errors-table').innerText")
        assert f"{run.nas_path}/Data/x.cbcl" in file_errors
        assert "Permission denied (EACCES)" in file_errors
        runs = await page.evaluate("document.getElementById('runs-table').innerText")
        assert run.run_id in runs
        assert "in progress" in runs
        bars = await page.evaluate("document.querySelectorAll('#timeline-chart rect').length")
        assert bars == 2
        assert await page.evaluate("document.getElementById('conn-status').textContent") == "live"
        # WHEN the range is set to four weeks
        await page.evaluate(
            "(() => { const s = document.getElementById('range'); s.value = '28d';"
            " s.dispatchEvent(new Event('change')); })()"
        )

        async def four_weeks() -> bool:
            return await page.evaluate("document.getElementById('window').textContent") == "28 days"

        # THEN the page shows four weeks (and keeps it in the address for a reload)
        await wait_for(four_weeks, what="four-week range on the page")
        assert await page.evaluate("location.hash") == "#28d"
        assert await page.text("files-transferred") == "13"
        shot = await page.call("Page.captureScreenshot", format="png")
        (tmp_path / "dashboard.png").write_bytes(base64.b64decode(shot["data"]))
