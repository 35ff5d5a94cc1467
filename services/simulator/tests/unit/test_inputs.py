"""Validation of what people type: read structures, pace, scale, flow cells, settings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from seqferry_shared.sequencers import Instrument
from seqferry_simulator.domain.errors import SpecError
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.profiles import PROFILES, Cadence
from seqferry_simulator.domain.reads import ReadStructure
from seqferry_simulator.domain.spec import new_run_spec
from seqferry_simulator.settings import SimulatorSettings

STARTED = datetime(2025, 11, 25, 14, 3, 7, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (151, [(151, False)]),
        ("151,151", [(151, False), (151, False)]),
        ("151+10+151", [(151, False), (10, True), (151, False)]),
        ([151, 10, 10, 151], [(151, False), (10, True), (10, True), (151, False)]),
    ],
)
def test_read_structures(value: object, shape: list[tuple[int, bool]]) -> None:
    structure = ReadStructure.parse(value)  # type: ignore[arg-type]
    assert [(r.cycles, r.is_index) for r in structure.reads] == shape
    assert [r.number for r in structure.reads] == list(range(1, len(shape) + 1))
    assert structure.total_cycles == sum(c for c, _ in shape)


def test_second_index_is_reverse_complement_on_v6_instruments() -> None:
    reads = ReadStructure.parse("151,10,10,151", index2_reverse_complement=True).reads
    assert [r.reverse_complement for r in reads] == [False, False, True, False]


@pytest.mark.parametrize("value", ["", "abc", "1,2,3,4,5", "0", "700", "600,600", True])
def test_bad_read_structures_name_the_field(value: object) -> None:
    with pytest.raises(SpecError) as caught:
        ReadStructure.parse(value)  # type: ignore[arg-type]
    assert caught.value.field == "cycles"


def test_pace_realistic_follows_the_instrument_and_numbers_are_cycles_per_second() -> None:
    cadence = PROFILES[Instrument.MISEQ].cadence
    assert Pace.of("realistic", cadence) == Pace(cadence.clustering_s, cadence.seconds_per_cycle, cadence.finish_s)
    fast = Pace.of("4", cadence)
    assert fast.seconds_per_cycle == 0.25
    assert fast.duration(10) == pytest.approx(0.5 + 2.5 + 0.5)


@pytest.mark.parametrize("value", ["fast", "0", "-1", "nan", "1e9"])
def test_bad_pace_names_the_field(value: str) -> None:
    with pytest.raises(SpecError) as caught:
        Pace.of(value, Cadence(1, 1, 1))
    assert caught.value.field == "pace"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flowcell": "S4"}, "flowcell"),
        ({"scale": 0.0}, "scale"),
        ({"scale": 2.0}, "scale"),
        ({"chunks": 0}, "chunks"),
        ({"serial": "X123"}, "serial"),
        ({"run_number": 10000}, "run_number"),
        ({"side": "C"}, "side"),
        ({"reads": "1,2,3,4,5"}, "cycles"),
    ],
)
def test_bad_run_specs_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        new_run_spec(Instrument.MISEQ, seed=1, started_at=STARTED, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_unknown_instrument_and_naive_time_are_refused() -> None:
    with pytest.raises(SpecError) as caught:
        new_run_spec("hiseq", seed=1, started_at=STARTED)
    assert caught.value.field == "instrument"
    with pytest.raises(SpecError) as caught:
        new_run_spec(Instrument.MISEQ, seed=1, started_at=datetime(2025, 1, 1))
    assert caught.value.field == "started_at"


@pytest.mark.parametrize("instrument", list(PROFILES))
def test_many_run_ids_all_match_the_shared_pattern(instrument: Instrument) -> None:
    for seed in range(50):
        spec = new_run_spec(instrument, seed=seed, started_at=STARTED)
        assert instrument.run_folder_pattern.match(spec.run_id), spec.run_id


def test_profiles_end_with_the_shared_completion_marker() -> None:
    for instrument, profile in PROFILES.items():
        assert profile.markers == instrument.markers
        assert profile.markers[-1] == instrument.completion_marker
        assert profile.basecalls.value == instrument.basecalls.value


def test_instruments_it_cannot_write_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="does not write runs for /seq/h=hiseq4000"):
        SimulatorSettings(environment="test", sequencer_paths="/seq/m=miseq,/seq/h=hiseq4000")


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEQFERRY_NAS_ROOT", str(tmp_path))
    monkeypatch.setenv("SEQFERRY_PACE", "Realistic")
    monkeypatch.setenv("SEQFERRY_DISK_BUDGET_BYTES", "")
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/seq/a=miseq,/seq/novaseqx")
    settings = SimulatorSettings(environment="test")
    assert settings.http_port == 8084
    assert settings.nas_root == tmp_path
    assert settings.pace == "realistic"
    assert settings.disk_budget_bytes is None
    assert [(s.path, s.instrument) for s in settings.tagged_sequencers] == [
        ("/seq/a", Instrument.MISEQ),
        ("/seq/novaseqx", Instrument.NOVASEQX),
    ]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"pace": "fast"}, "pace"),
        ({"scale": 0}, "scale"),
        ({"lab_time_zone": "Mars/Base"}, "lab_time_zone"),
        ({"run_cycles": "1,2,3,4,5"}, "run_cycles"),
        ({"mode": "parity"}, "SEQFERRY_PARITY_BUCKET"),
        ({"sequencer_paths": "/seq/unknown"}, "'/seq/unknown=<instrument>'"),
        ({"max_parallel_runs": 0}, "max_parallel_runs"),
    ],
)
def test_bad_settings_are_explained(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SimulatorSettings(environment="test", **kwargs)  # type: ignore[arg-type]
    assert needle in str(caught.value)
