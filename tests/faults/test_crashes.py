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
from system import COMPLETED, System, wait_until
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
    system.settle(quiet_s=5, timeout_s=300)
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
    assert mirror.missing == []
    assert mirror.different == []
    assert mirror.extra_versions == {}
    assert stranded == []
    assert copies == Counter({run.run_id: 1})
