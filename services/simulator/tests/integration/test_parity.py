"""Reference-parity mode against the moto server: the sample bucket lands in <path>/<date>/<uuid>/."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from seqferry_shared.aws import ClientFactory, sync_client
from seqferry_shared.telemetry import Telemetry
from seqferry_simulator.app import create_app
from seqferry_simulator.domain.records import Kind, RunState
from seqferry_simulator.parity import ParityCopier
from seqferry_simulator.service import ManagerConfig, RunManager
from seqferry_simulator.settings import SimulatorSettings
from seqferry_simulator.store import Ledger

pytestmark = pytest.mark.integration

SAMPLE = {
    "sample-run/RunInfo.xml": b"<RunInfo/>",
    "sample-run/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl": bytes(range(256)) * 40,
    "sample-run/CopyComplete.txt": b"",
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def sample_bucket(sim_settings: SimulatorSettings, resource_prefix: str) -> str:
    s3 = sync_client("s3", sim_settings)
    bucket = f"{resource_prefix}-samples"
    s3.create_bucket(Bucket=bucket)
    for key, body in SAMPLE.items():
        s3.put_object(Bucket=bucket, Key=f"samples/{key}", Body=body)
    # a hostile key must not escape the destination folder
    s3.put_object(Bucket=bucket, Key="samples/sample-run/../../../escape.txt", Body=b"x")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "samples/sample-run/../../../escape.txt" in keys
    return bucket


async def _noop(_: Any) -> None:
    return None


async def test_each_tick_copies_the_samples_under_a_new_date_and_uuid(
    sim_settings: SimulatorSettings, sample_bucket: str, tmp_path: Path
) -> None:
    # GIVEN a copier for two sequencer paths (2- and 4-digit-year instruments)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    sequencers = tuple(
        SimulatorSettings(
            environment="test", sequencer_paths="/sequencers/incoming/miseq=miseq,/sequencers/incoming/x=novaseqx"
        ).tagged_sequencers
    )
    nas = tmp_path / "nas"
    manager = RunManager(
        ManagerConfig(nas_root=nas, sequencers=sequencers), ledger, on_started=_noop, on_completed=_noop
    )
    moment = datetime(2025, 11, 25, 23, 30, tzinfo=UTC)
    async with ClientFactory(sim_settings) as clients:
        copier = ParityCopier(
            await clients.get("s3"),
            bucket=sample_bucket,
            prefix="samples/",
            nas_root=nas,
            sequencers=sequencers,
            zone=sim_settings.zone,
            manager=manager,
            now=lambda: moment,
        )
        # WHEN two ticks run
        first = await copier.tick()
        second = await copier.tick()
    # THEN every tick made one folder per sequencer path, named by the path's date format and a uuid
    assert [r.sequencer_path for r in first] == ["/sequencers/incoming/miseq", "/sequencers/incoming/x"]
    assert first[0].nas_path.startswith("/sequencers/incoming/miseq/251125/")
    assert first[1].nas_path.startswith("/sequencers/incoming/x/20251125/")
    assert {r.nas_path for r in first}.isdisjoint({r.nas_path for r in second})
    for record in first + second:
        assert UUID.match(record.run_id)
        folder = nas / record.nas_path.lstrip("/")
        copied = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        assert copied == SAMPLE
        assert record.kind is Kind.PARITY
        assert record.state is RunState.COMPLETE
        assert record.bytes == sum(len(b) for b in SAMPLE.values())
    # AND the hostile key was skipped, nothing escaped the NAS folders
    assert not list(tmp_path.rglob("escape.txt"))
    assert len(ledger.records()) == 4


async def test_parity_mode_service_copies_on_its_own(
    sim_settings: SimulatorSettings, sample_bucket: str, telemetry: Telemetry
) -> None:
    settings = sim_settings.model_copy(
        update={"mode": "parity", "parity_bucket": sample_bucket, "parity_prefix": "samples/", "parity_interval_s": 0.2}
    )
    app = create_app(settings, telemetry=telemetry)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if len(list(settings.nas_root.rglob("CopyComplete.txt"))) >= 2:
                break
            await asyncio.sleep(0.05)
    markers = list(settings.nas_root.rglob("CopyComplete.txt"))
    assert len(markers) >= 2
    assert all(UUID.match(m.parent.parent.name) for m in markers)
