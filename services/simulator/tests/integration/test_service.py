"""The simulator service against the moto server: HTTP API, a real run on disk, events on the bus."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from seqferry_shared.aws import sync_client
from seqferry_shared.telemetry import Telemetry
from seqferry_simulator.app import create_app
from seqferry_simulator.settings import SimulatorSettings

pytestmark = pytest.mark.integration


@asynccontextmanager
async def client_for(settings: SimulatorSettings, telemetry: Telemetry) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, telemetry=telemetry)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as client:
            yield client


def _auth(settings: SimulatorSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}


def _receive(settings: SimulatorSettings, url: str, wanted: set[str], timeout_s: float = 20) -> dict[str, Any]:
    sqs = sync_client("sqs", settings)
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while wanted - set(found) and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event = json.loads(message["Body"])
            found[event["detail-type"]] = event
    return found


async def test_post_runs_writes_a_run_and_reports_it_on_the_bus(
    sim_settings: SimulatorSettings, telemetry: Telemetry, bus_observer: str
) -> None:
    async with client_for(sim_settings, telemetry) as client:
        # GIVEN a ready simulator
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        # WHEN a small, fast MiSeq run is requested
        body = {"instrument": "miseq", "cycles": "4,2", "flowcell": "v2-nano", "pace": "40", "scale": 0.00001}
        created = await client.post("/runs", json=body, headers=_auth(sim_settings))
        assert created.status_code == 201, created.text
        run = created.json()
        assert run["state"] == "running"
        assert run["path"] == f"/sequencers/incoming/miseq/{run['run_id']}"
        # THEN it completes on disk
        for _ in range(200):
            current = (await client.get(f"/runs/{run['run_id']}")).json()
            if current["state"] == "complete":
                break
            await asyncio.sleep(0.05)
        assert current["state"] == "complete", current
        assert current["progress"] == 1.0
        assert current["markers"] == ["RTAComplete.txt"]
        folder = sim_settings.nas_root / run["path"].lstrip("/")
        assert (folder / "RTAComplete.txt").exists()
        assert current["files"] == sum(1 for p in folder.rglob("*") if p.is_file())
        listed = (await client.get("/runs", params={"state": "complete"})).json()
        assert [r["run_id"] for r in listed] == [run["run_id"]]
    # AND both events reached the bus, describing the run
    events = await asyncio.to_thread(
        _receive, sim_settings, bus_observer, {"Sequencing Run Started", "Sequencing Run Completed"}
    )
    started = events["Sequencing Run Started"]
    completed = events["Sequencing Run Completed"]
    assert started["source"] == completed["source"] == "seqferry.simulator"
    assert started["detail"]["run_id"] == completed["detail"]["run_id"] == run["run_id"]
    assert started["detail"]["path"] == run["path"]
    assert started["detail"]["instrument"] == "miseq"
    assert started["detail"]["cycles"] == completed["detail"]["cycles"] == 6
    assert completed["detail"]["files"] == current["files"]
    assert completed["detail"]["bytes"] == current["bytes"] > 0


async def test_bad_requests_are_refused_naming_the_field(sim_settings: SimulatorSettings, telemetry: Telemetry) -> None:
    async with client_for(sim_settings, telemetry) as client:
        # no token, wrong token
        assert (await client.post("/runs", json={})).status_code == 401
        assert (await client.post("/runs", json={}, headers={"Authorization": "Bearer nope"})).status_code == 403
        cases = [
            ({"cycles": "1,2,3,4,5"}, "cycles"),
            ({"instrument": "miseq", "flowcell": "S4"}, "flowcell"),
            ({"instrument": "novaseqx"}, "instrument"),
            ({"instrument": "hiseq"}, "instrument"),
            ({"pace": "ludicrous"}, "pace"),
            ({"scale": 5}, "scale"),
            ({"sequencer_path": "/not/configured"}, "sequencer_path"),
            ({"colour": "blue"}, "colour"),
        ]
        for body, field in cases:
            response = await client.post("/runs", json=body, headers=_auth(sim_settings))
            assert response.status_code == 422, (body, response.text)
            locations = [d["loc"][-1] for d in response.json()["detail"]]
            assert field in locations, (body, response.json())
        assert (await client.get("/runs/nope")).status_code == 404
        instruments = (await client.get("/instruments")).json()
        assert {i["instrument"] for i in instruments} >= {"miseq", "novaseqx"}
        assert next(i for i in instruments if i["instrument"] == "miseq")["sequencer_paths"] == [
            "/sequencers/incoming/miseq"
        ]


async def test_busy_instruments_answer_409(sim_settings: SimulatorSettings, telemetry: Telemetry) -> None:
    slow = sim_settings.model_copy(update={"max_parallel_runs": 1, "pace": "1"})
    async with client_for(slow, telemetry) as client:
        body = {"instrument": "miseq", "cycles": 50, "flowcell": "v2-nano"}
        assert (await client.post("/runs", json=body, headers=_auth(slow))).status_code == 201
        busy = await client.post("/runs", json=body, headers=_auth(slow))
        assert busy.status_code == 409
        (running,) = (await client.get("/runs")).json()
        assert running["state"] == "running"
    # leaving the lifespan stops the run where it is, like a sequencer switched off
    (left,) = [line for line in (slow.state_dir / "runs.jsonl").read_text().splitlines() if '"abandoned"' in line]
    assert json.loads(left)["run_id"] == running["run_id"]


async def test_autonomous_runs_start_on_schedule(sim_settings: SimulatorSettings, telemetry: Telemetry) -> None:
    scheduled = sim_settings.model_copy(update={"start_interval_s": 0.2, "run_cycles": "3", "pace": "100"})
    async with client_for(scheduled, telemetry) as client:
        for _ in range(100):
            runs = (await client.get("/runs")).json()
            if len({r["instrument"] for r in runs}) == 2:
                break
            await asyncio.sleep(0.05)
    # runs alternate between the configured instruments
    assert {r["instrument"] for r in runs} == {"miseq", "novaseq6000"}
