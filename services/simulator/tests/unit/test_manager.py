"""The run manager: where runs go, their life cycle, callbacks, the disk budget and the ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest

from seqferry_shared.sequencers import Instrument, SequencerPath
from seqferry_simulator.domain.budget import Usage, to_delete
from seqferry_simulator.domain.errors import CapacityError, SpecError
from seqferry_simulator.domain.parity import UnsafeKeyError, destination_folder, relative_key
from seqferry_simulator.domain.records import Kind, RunRecord, RunState
from seqferry_simulator.service import ManagerConfig, RunManager, RunRequest
from seqferry_simulator.store import Ledger
from seqferry_simulator.writer import folder_size

T0 = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, RunRecord]] = []

    async def started(self, record: RunRecord) -> None:
        self.events.append(("started", record))

    async def completed(self, record: RunRecord) -> None:
        self.events.append(("completed", record))


def _manager(tmp_path: Path, recorder: Recorder, **overrides: object) -> RunManager:
    ticks = count()
    options: dict[str, object] = {"pace": "500", "scale": 1e-5, "run_cycles": "4"} | overrides
    config = ManagerConfig(
        nas_root=tmp_path / "nas",
        sequencers=(
            SequencerPath(path="/sequencers/miseq", instrument=Instrument.MISEQ),
            SequencerPath(path="/sequencers/novaseq", instrument=Instrument.NOVASEQ6000),
        ),
        **options,  # type: ignore[arg-type]
    )
    return RunManager(
        config,
        Ledger(tmp_path / "state" / "runs.jsonl"),
        on_started=recorder.started,
        on_completed=recorder.completed,
        now=lambda: T0 + timedelta(minutes=next(ticks)),
    )


async def _settle(manager: RunManager) -> None:
    await asyncio.wait_for(manager.idle(), 20)


async def test_a_requested_run_is_written_and_reported(tmp_path: Path) -> None:
    # GIVEN a manager with a MiSeq and a NovaSeq folder
    recorder = Recorder()
    manager = _manager(tmp_path, recorder)
    # WHEN a MiSeq run is requested
    record = await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    await _settle(manager)
    # THEN it was written under the MiSeq path, reported started then completed
    assert record.nas_path == f"/sequencers/miseq/{record.run_id}"
    folder = tmp_path / "nas" / "sequencers/miseq" / record.run_id
    assert (folder / "RTAComplete.txt").exists()
    assert [kind for kind, _ in recorder.events] == ["started", "completed"]
    done = recorder.events[1][1]
    assert done.state is RunState.COMPLETE
    assert done.files == sum(1 for p in folder.rglob("*") if p.is_file())
    assert done.bytes == folder_size(folder)
    assert done.total_cycles == 4
    # AND the ledger remembers it
    assert [r.state for r in manager.ledger.records()] == [RunState.COMPLETE]
    (view,) = manager.views()
    assert view.cycles_done == 4


async def test_run_numbers_increase_and_novaseq_uses_both_sides(tmp_path: Path) -> None:
    recorder = Recorder()
    manager = _manager(tmp_path, recorder, max_parallel_runs=4, pace="5")
    a = await manager.start(RunRequest(instrument=Instrument.NOVASEQ6000, flowcell="S1"))
    b = await manager.start(RunRequest(instrument=Instrument.NOVASEQ6000, flowcell="S1"))
    # both flow-cell positions of the instrument are in use, so a third run has to wait
    with pytest.raises(CapacityError):
        await manager.start(RunRequest(instrument=Instrument.NOVASEQ6000))
    await manager.stop()
    number_a, number_b = (int(r.run_id.split("_")[2]) for r in (a, b))
    assert number_b == number_a + 1
    assert {a.run_id.split("_")[3][0], b.run_id.split("_")[3][0]} == {"A", "B"}
    # runs stopped mid-way are left on disk and marked abandoned
    assert {r.state for r in manager.ledger.records()} == {RunState.ABANDONED}


async def test_limits_and_bad_requests(tmp_path: Path) -> None:
    manager = _manager(tmp_path, Recorder(), max_parallel_runs=1, pace="5")
    with pytest.raises(SpecError) as caught:
        await manager.start(RunRequest(sequencer_path="/elsewhere"))
    assert caught.value.field == "sequencer_path"
    with pytest.raises(SpecError) as caught:
        await manager.start(RunRequest(sequencer_path="/sequencers/miseq", instrument=Instrument.NOVASEQX))
    assert caught.value.field == "instrument"
    with pytest.raises(SpecError) as caught:
        await manager.start(RunRequest(instrument=Instrument.NOVASEQX))
    assert caught.value.field == "instrument"
    with pytest.raises(SpecError) as caught:
        await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="S4"))
    assert caught.value.field == "flowcell"
    assert not manager.active
    await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    with pytest.raises(CapacityError):
        await manager.start(RunRequest(instrument=Instrument.NOVASEQ6000))
    await manager.stop()


async def test_run_numbers_continue_after_those_on_disk(tmp_path: Path) -> None:
    recorder = Recorder()
    first = _manager(tmp_path, recorder)
    a = await first.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    await _settle(first)
    # a new process with the same seed finds the earlier run and continues the numbering
    second = _manager(tmp_path, recorder)
    second.ledger.load()
    b = await second.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    await _settle(second)
    assert a.run_id.split("_")[1] == b.run_id.split("_")[1]  # same instrument serial
    assert int(b.run_id.split("_")[2]) == int(a.run_id.split("_")[2]) + 1


async def test_disk_budget_deletes_finished_runs_oldest_first(tmp_path: Path) -> None:
    # GIVEN a budget that holds about two small MiSeq runs, and a folder the simulator did not write
    recorder = Recorder()
    probe = _manager(tmp_path / "probe", recorder)
    await probe.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    await _settle(probe)
    one_run = probe.ledger.records()[0].bytes
    manager = _manager(tmp_path, recorder, disk_budget_bytes=int(one_run * 2.5))
    foreign = tmp_path / "nas/sequencers/miseq/251101_M99999_0001_000000000-AAAAA"
    foreign.mkdir(parents=True)
    (foreign / "RTAComplete.txt").write_text("someone else's run")
    # WHEN four runs complete one after the other
    runs = []
    for _ in range(4):
        runs.append(await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano")))
        await _settle(manager)
    # THEN the two oldest were deleted and the rest fit in the budget
    states = {r.run_id: r.state for r in manager.ledger.records()}
    assert [states[r.run_id] for r in runs] == [
        RunState.DELETED,
        RunState.DELETED,
        RunState.COMPLETE,
        RunState.COMPLETE,
    ]
    for record in runs[:2]:
        assert not (tmp_path / "nas" / record.nas_path.lstrip("/")).exists()
    kept = sum(folder_size(tmp_path / "nas" / r.nas_path.lstrip("/")) for r in runs[2:])
    assert kept <= int(one_run * 2.5)
    # AND the folder it did not write is untouched
    assert (foreign / "RTAComplete.txt").exists()


def test_budget_selection_never_picks_running_runs() -> None:
    def record(name: str, state: RunState, minute: int) -> RunRecord:
        at = T0 + timedelta(minutes=minute)
        return RunRecord(
            run_id=name, sequencer_path="/s", nas_path=f"/s/{name}", started_at=at, completed_at=at, state=state
        )

    usages = [
        Usage(record("new", RunState.COMPLETE, 30), 100),
        Usage(record("old", RunState.COMPLETE, 10), 100),
        Usage(record("live", RunState.RUNNING, 0), 500),
        Usage(record("dead", RunState.ABANDONED, 20), 100),
    ]
    assert [u.record.run_id for u in to_delete(usages, 650)] == ["old", "dead"]
    assert [u.record.run_id for u in to_delete(usages, 10_000)] == []
    assert [u.record.run_id for u in to_delete(usages, 100)] == ["old", "dead", "new"]


def test_ledger_survives_restarts_and_marks_unfinished_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    ledger = Ledger(path)
    running = RunRecord(run_id="r1", sequencer_path="/s", nas_path="/s/r1", started_at=T0)
    ledger.put(running)
    ledger.put(RunRecord(run_id="r2", sequencer_path="/s", nas_path="/s/r2", started_at=T0, state=RunState.COMPLETE))
    with path.open("a") as out:
        out.write("not json\n")
    again = Ledger(path)
    again.load()
    assert {r.run_id: r.state for r in again.records()} == {"r1": RunState.ABANDONED, "r2": RunState.COMPLETE}
    assert len(path.read_text().splitlines()) == 2


def test_parity_destinations_and_hostile_keys() -> None:
    moment = datetime(2025, 11, 25, 23, 30, tzinfo=UTC)
    assert destination_folder("/seq/iseq", "%Y%m%d", moment, "u-1") == "/seq/iseq/20251125/u-1"
    assert destination_folder("/seq/miseq", "%y%m%d", moment, "u-1") == "/seq/miseq/251125/u-1"
    assert relative_key("sample/run/RunInfo.xml", "sample/") == "run/RunInfo.xml"
    for key in ("sample/", "sample/a/../../etc/passwd", "sample/a//b", "other/x", "sample/dir/"):
        with pytest.raises(UnsafeKeyError):
            relative_key(key, "sample/")
    assert Kind.PARITY.value == "parity"


async def test_refused_requests_do_not_use_up_run_numbers(tmp_path: Path) -> None:
    recorder = Recorder()
    manager = _manager(tmp_path, recorder)
    a = await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    await _settle(manager)
    with pytest.raises(SpecError):
        await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="no-such-flowcell"))
    b = await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    await _settle(manager)
    assert int(b.run_id.split("_")[2]) == int(a.run_id.split("_")[2]) + 1


async def test_a_share_of_autonomous_runs_stop_early_requested_ones_only_when_asked(tmp_path: Path) -> None:
    # GIVEN every autonomous run set to stop early
    recorder = Recorder()
    manager = _manager(tmp_path, recorder, stopped_run_share=1.0, run_cycles="6,6")
    # WHEN one run is requested and one starts on the schedule
    requested = await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano"))
    autonomous = await manager.autostart()
    await _settle(manager)
    assert autonomous is not None
    done = {r.run_id: r for kind, r in recorder.events if kind == "completed"}
    # THEN the requested run completes as planned and the autonomous one ends early, saying how
    assert done[requested.run_id].completion_status == "CompletedAsPlanned"
    assert done[requested.run_id].cycles_done == 12
    stopped = done[autonomous.run_id]
    assert stopped.completion_status in ("UserEndedEarly", "ExceptionEndedEarly")
    assert 1 <= stopped.cycles_done < 12
    # AND a requested stop is honoured, a stop outside the run refused naming the field
    asked = await manager.start(RunRequest(instrument=Instrument.MISEQ, flowcell="v2-nano", stop_after_cycle=3))
    await _settle(manager)
    assert {r.run_id: r for kind, r in recorder.events if kind == "completed"}[asked.run_id].cycles_done == 3
    with pytest.raises(SpecError, match="stop_after_cycle"):
        await manager.start(RunRequest(instrument=Instrument.MISEQ, stop_after_cycle=12))
