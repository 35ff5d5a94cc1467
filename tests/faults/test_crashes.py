"""Crashes: services SIGKILLed at random moments while they work; nothing lost, nothing done twice.

Each kill is a SIGKILL (no shutdown code runs), followed by a restart of the same service, as a process manager
would do. The work goes on meanwhile: run folders written onto the NAS, large files uploaded in parts.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from scenario import Profile, Recorder, Row
from system import COMPLETED, STATE_CHANGED, System, wait_until
from workload import RunFolder, write_big_file

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(1800)]

MIB = 1024 * 1024
MULTIPART = {"SEQFERRY_LOCAL__MULTIPART_THRESHOLD": str(5 * MIB), "SEQFERRY_LOCAL__PART_SIZE": str(5 * MIB)}


def announcements(system: System) -> tuple[Counter[str], Counter[str]]:
    """Copies per run and distinct announcement event ids per run."""
    events = system.events(COMPLETED)
    copies = Counter(e["detail"]["run_id"] for e in events)
    ids = Counter(run for run, _ in {(e["detail"]["run_id"], e["detail"]["meta"]["event_id"]) for e in events})
    return copies, ids


def test_executor_killed_at_random_moments_loses_and_repeats_nothing(
    system: System, profile: Profile, reliability: Recorder
) -> None:
    rng = random.Random(7)
    system["executor"].env |= MULTIPART
    system.start("scheduler", "executor", "notifier")
    # GIVEN a run being written (thousands of small files) and large files uploaded in 5 MiB parts
    reads, flowcell = profile.miseq
    run = RunFolder(system.nas, "miseq", reads=reads, flowcell=flowcell, seed=31, pace=5).start()
    project = system.nas / "adhoc" / "project-7"
    big = 0
    kills_in_multipart = 0
    recoveries: list[float] = []
    # WHEN the executor is SIGKILLed at random moments, each time while a multipart upload is in flight if one is
    for _ in range(profile.executor_kills):
        if big < profile.big_files * 3:
            write_big_file(project / f"sample-{big}.bam", profile.big_file_mib * MIB, seed=big)
            big += 1
        deadline = time.monotonic() + rng.uniform(1.0, 6.0)
        while time.monotonic() < deadline and not system.multipart_uploads():
            time.sleep(0.1)
        kills_in_multipart += bool(system.multipart_uploads())
        system["executor"].kill()
        restarted = time.monotonic()
        system.start("executor")
        recoveries.append(time.monotonic() - restarted)
    run.wait()
    # THEN the run is announced, once
    wait_until(lambda: run.run_id in system.completions(), 600, "the run announced", system=system)
    files = system.nas_files(run.folder, project)
    wait_until(
        lambda: set(files) <= set(system.objects()) and not system.multipart_uploads(),
        300,
        "every file in S3 and no multipart upload left",
        system=system,
    )
    system.settle(quiet_s=3, timeout_s=300)
    mirror = system.mirror_check(files)
    copies, ids = announcements(system)
    stranded = system.multipart_uploads()
    reliability.add(
        Row(
            scenario="crash",
            fault="executor killed (SIGKILL) mid-transfer",
            injected=f"SIGKILL at random moments, {kills_in_multipart} of them with a multipart upload in flight; "
            f"{len(files)} files ({big} of {profile.big_file_mib} MiB in 5 MiB parts)",
            count=profile.executor_kills,
            lost=mirror.lost + len(stranded) + (0 if ids[run.run_id] else 1),
            duplicated=mirror.duplicated + max(0, copies[run.run_id] - 1),
            recovery_s=max(recoveries),
            notes=f"extra object versions {mirror.duplicated}, stranded multipart uploads {len(stranded)}",
        )
    )
    # every file is in S3 byte for byte, once per version; no multipart upload was left behind
    assert mirror.problems == {}
    assert stranded == []
    assert copies == Counter({run.run_id: 1})


def test_notifier_adhoc_and_scheduler_killed_at_random_moments(
    system: System, profile: Profile, reliability: Recorder
) -> None:
    rng = random.Random(11)
    second = system.replica("scheduler")
    system.start("scheduler", second.name, "executor", "notifier", "adhoc")
    # GIVEN runs being written, one after the other, and manifests dropped into adhoc/ every second or so
    runs = [RunFolder(system.nas, "miseq", reads="26,8,26", flowcell="v2-micro", seed=41 + i, pace=8) for i in range(3)]
    targets = (
        ["notifier"] * profile.notifier_kills
        + ["adhoc"] * profile.adhoc_kills
        + [["scheduler", second.name][i % 2] for i in range(profile.scheduler_kills)]
    )
    rng.shuffle(targets)
    manifests: list[str] = []
    kills: Counter[str] = Counter()
    recoveries: dict[str, float] = {}
    # WHEN the notifier, adhoc and one scheduler replica at a time are SIGKILLed at random moments
    for step, target in enumerate(targets):
        if step < len(runs):
            runs[step].start()
        key = f"adhoc/rerun-{step:03d}.txt"
        run = runs[min(step, len(runs) - 1)]
        system.s3.put_object(Bucket=system.names.bucket, Key=key, Body=f"{run.nas_path}\n".encode())
        manifests.append(key)
        time.sleep(rng.uniform(0.5, 3.0))
        service = target.partition("#")[0]
        system[target].kill()
        kills[service] += 1
        restarted = time.monotonic()
        system.start(target)
        recoveries[service] = max(recoveries.get(service, 0.0), time.monotonic() - restarted)
    for run in runs:
        if not run.started:
            run.start()
        run.wait()
    # THEN every run is announced, every manifest has its result, and it all settles
    run_ids = {run.run_id for run in runs}
    wait_until(lambda: run_ids <= set(system.completions()), 600, "every run announced", system=system)
    results = [f"adhoc/results/{key.removeprefix('adhoc/')}.json" for key in manifests]
    wait_until(lambda: set(results) <= set(system.objects("adhoc/results/")), 300, "every result", system=system)
    system.settle(quiet_s=3, timeout_s=300)
    events = system.events()

    # runs: one announcement (one event id) each; a repeat of the same event only after a notice takeover
    copies, ids = announcements(system)
    takeovers = {run_id: (system.notice(run_id) or {}).get("takeovers", 0) for run_id in run_ids}
    repeats = sum(copies[r] - 1 for r in run_ids)
    reliability.add(
        Row(
            scenario="crash",
            fault="notifier killed (SIGKILL) while runs complete",
            injected="SIGKILL at random moments while 3 runs are written and announced",
            count=kills["notifier"],
            lost=sum(1 for r in run_ids if ids[r] == 0),
            duplicated=sum(ids[r] - 1 for r in run_ids if ids[r]) + repeats,
            recovery_s=recoveries.get("notifier"),
            notes=f"{repeats} same-event repeat(s) after {sum(takeovers.values())} lease takeover(s)",
        )
    )
    # manifests: one request each, executed once
    requested: dict[str, set[str]] = {}
    for event in events:
        if event["detail-type"] == "Adhoc Manifest Processed":
            requested.setdefault(event["detail"]["key"], set()).update(event["detail"]["request_ids"])
    executions: dict[str, set[str]] = {}
    for event in events:
        trigger = event["detail"].get("trigger") or {}
        if event["detail-type"] == STATE_CHANGED and trigger.get("kind") == "request":
            executions.setdefault(trigger["id"], set()).add(event["detail"]["execution_id"])
    request_ids = {r for found in requested.values() for r in found}
    reliability.add(
        Row(
            scenario="crash",
            fault="adhoc killed (SIGKILL) while manifests arrive",
            injected=f"SIGKILL at random moments while {len(manifests)} manifests are dropped into adhoc/",
            count=kills["adhoc"],
            lost=sum(1 for key in manifests if not requested.get(key))
            + sum(1 for r in request_ids if not executions.get(r)),
            duplicated=sum(len(found) - 1 for found in requested.values())
            + sum(len(found) - 1 for found in executions.values()),
            recovery_s=recoveries.get("adhoc"),
        )
    )
    # ticks: every tick opened exactly once while one scheduler replica at a time was killed
    windows: dict[int, set[str]] = {}
    for event in events:
        if event["detail-type"] == "Transfer Window Opened":
            windows.setdefault(int(event["detail"]["tick"]), set()).add(event["detail"]["meta"]["event_id"])
    missing_ticks = sorted(set(range(min(windows), max(windows) + 1)) - set(windows))
    reliability.add(
        Row(
            scenario="crash",
            fault="scheduler replica killed (SIGKILL), two replicas",
            injected="SIGKILL of one replica at a time at random moments, 2 s ticks",
            count=kills["scheduler"],
            lost=len(missing_ticks),
            duplicated=sum(len(found) - 1 for found in windows.values()),
            recovery_s=recoveries.get("scheduler"),
            notes=f"{len(windows)} ticks observed",
        )
    )
    assert {r: ids[r] for r in run_ids} == dict.fromkeys(run_ids, 1)
    for run_id in run_ids:
        assert copies[run_id] <= 1 + takeovers[run_id], (run_id, copies[run_id], takeovers[run_id])
    assert sorted(requested) == sorted(manifests)
    assert all(len(found) == 1 for found in requested.values()), requested
    assert all(len(executions.get(r, ())) == 1 for r in request_ids), executions
    assert missing_ticks == []
    assert all(len(found) == 1 for found in windows.values())
