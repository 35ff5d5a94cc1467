"""AWS answering badly or not at all: throttling and 5xx at a steady rate, then a full outage.

Both go through the fault proxy in front of the emulator, for every service at once: the executor's native S3
client included. Work in flight when the fault starts must complete afterwards, nothing lost, nothing twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from scenario import Profile, Recorder, Row
from system import System, wait_until
from workload import RunFolder, write_big_file

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(1800)]

MIB = 1024 * 1024
SERVICES = ("scheduler", "executor", "notifier")


def bus_duplicates(system: System) -> int:
    """Copies of one event (same detail-type and meta.event_id) beyond the first, over everything on the bus."""
    seen = Counter((e["detail-type"], e["detail"]["meta"]["event_id"]) for e in system.events())
    return sum(n - 1 for n in seen.values())


def test_throttling_and_5xx_on_s3_and_eventbridge(system: System, profile: Profile, reliability: Recorder) -> None:
    system["executor"].env |= {
        "SEQFERRY_LOCAL__MULTIPART_THRESHOLD": str(5 * MIB),
        "SEQFERRY_LOCAL__PART_SIZE": str(5 * MIB),
    }
    assert system.proxy is not None
    system.start(*SERVICES)
    # GIVEN 20 % of S3 and EventBridge calls answered 503 SlowDown / throttled (half of those as 500s)
    rate = profile.throttle_rate
    system.proxy.set_rules(
        [
            {"kind": "error", "services": ["s3", "events"], "rate": rate / 2},
            {"kind": "error", "services": ["s3", "events"], "rate": rate / 2, "status": 500},
        ],
        seed=5,
    )
    # WHEN a run is written and transferred, with a file large enough for a multipart upload
    reads, flowcell = profile.throttle_run
    run = RunFolder(system.nas, "miseq", reads=reads, flowcell=flowcell, seed=51, pace=10).start()
    project = system.nas / "adhoc" / "throttled"
    write_big_file(project / "sample.bam", 12 * MIB, seed=100)
    run.wait()
    written = time.monotonic()
    # THEN all of it completes: the run announced once, every file in S3 byte for byte, once
    announced = wait_until(
        lambda: run.run_id in system.completions() and time.monotonic(), 600, "the run announced", system=system
    )
    files = system.nas_files(run.folder, project)
    wait_until(lambda: set(files) <= set(system.objects()), 300, "every file in S3", system=system)
    system.settle(quiet_s=3, timeout_s=300)
    stats = system.proxy.stats()
    system.proxy.clear()
    mirror = system.mirror_check(files)
    duplicates = bus_duplicates(system)
    injected = stats["injected_by_kind"].get("error", 0)
    reliability.add(
        Row(
            scenario="throttling",
            fault=f"{rate:.0%} of S3 and EventBridge calls refused",
            injected="proxy answers 503 SlowDown (S3) / 400 ThrottlingException (EventBridge), or 500",
            count=injected,
            lost=mirror.lost + (0 if system.completions()[run.run_id] else 1),
            duplicated=mirror.duplicated + duplicates + max(0, system.completions()[run.run_id] - 1),
            notes=f"{len(files)} files; the run announced {announced - written:.0f} s after its last file was written; "
            f"{stats['retried_requests']} requests retried, {stats['retries']} retries, at most "
            f"{stats['max_attempts']} attempts for one request, median gap {stats['retry_gap_s']['median']:.2f} s",
            extra=stats,
        )
    )
    assert injected > 0
    assert mirror.problems == {}
    assert system.completions() == Counter({run.run_id: 1})
    assert duplicates == 0
    # AND retries are bounded (botocore: SEQFERRY_AWS_MAX_ATTEMPTS, 8; the native S3 client: its own policy)
    assert stats["retries"] >= injected * 0.9
    assert stats["max_attempts"] <= 8
    # and they wait between attempts
    assert stats["retry_gap_s"]["median"] > 0


@dataclass(frozen=True)
class Probe:
    service: str
    sent: float
    answered: float
    ready: bool


def readiness_sampler(system: System, names: tuple[str, ...], stop: threading.Event) -> list[Probe]:
    """Ask every service's /readyz every half second (one thread per service) until ``stop``."""
    probes: list[Probe] = []

    def sample(name: str) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            ready = system[name].ready()
            probes.append(Probe(name, sent, time.monotonic(), ready))
            stop.wait(0.5)

    for name in names:
        threading.Thread(target=sample, args=(name,), daemon=True, name=f"readiness-{name}").start()
    return probes


def test_aws_outage_during_transfers(system: System, profile: Profile, reliability: Recorder) -> None:
    assert system.proxy is not None
    system.start(*SERVICES)
    runs = [
        outage_phase(system, profile, reliability, mode, seed=61 + n) for n, mode in enumerate(profile.outage_modes)
    ]
    assert system.completions() == Counter({run.run_id: 1 for run in runs})


def outage_phase(system: System, profile: Profile, reliability: Recorder, mode: str, *, seed: int) -> RunFolder:
    assert system.proxy is not None
    # GIVEN transfers and message handling under way
    reads, flowcell = profile.miseq
    run = RunFolder(system.nas, "miseq", reads=reads, flowcell=flowcell, seed=seed, pace=4).start()
    prefix = str(run.folder.relative_to(system.nas))
    wait_until(lambda: len(system.objects(prefix)) > 20, 120, "transfers under way", system=system)
    stop = threading.Event()
    samples = readiness_sampler(system, SERVICES, stop)
    # WHEN AWS is unreachable for the outage's length (connections reset, or requests held and then reset)
    started = time.monotonic()
    system.proxy.outage(profile.outage_s, mode=mode)
    time.sleep(profile.outage_s)
    ended = time.monotonic()
    # THEN every service stays up, says not ready while it lasts, and is ready again soon after
    system.check_alive(*SERVICES)
    ready_again = wait_until(
        lambda: all(system[n].ready() for n in SERVICES) and time.monotonic(), 120, "ready again", system=system
    )
    objects_at_end = len(system.objects())
    resumed = wait_until(
        lambda: len(system.objects()) > objects_at_end and time.monotonic(), 120, "uploads resumed", system=system
    )
    stop.set()
    run.wait()
    # AND nothing was lost or done twice
    wait_until(lambda: run.run_id in system.completions(), 600, "the run announced", system=system)
    system.settle(quiet_s=3, timeout_s=300)
    mirror = system.mirror_check(system.nas_files(run.folder))
    copies = system.completions()[run.run_id]
    refused = system.proxy.stats()["injected_by_kind"].get(f"outage-{mode}", 0)
    # Probes sent once the outage began and answered before it ended
    during = [p for p in samples if p.sent > started + 1.0 and p.answered < ended]
    reliability.add(
        Row(
            scenario="outage",
            fault=f"AWS unreachable for {profile.outage_s:.0f} s ({mode})",
            injected="proxy resets every connection"
            if mode == "reset"
            else "proxy holds every request, then resets it",
            count=1,
            lost=mirror.lost + (0 if copies else 1),
            duplicated=mirror.duplicated + max(0, copies - 1) + bus_duplicates(system),
            recovery_s=resumed - ended,
            notes=f"ready again {ready_again - ended:.1f} s after; uploads resumed {resumed - ended:.1f} s after; "
            f"{refused} requests refused; {sum(not p.ready for p in during)} not-ready answers during it",
        )
    )
    assert {p.service for p in during} == set(SERVICES), "a service was not asked during the outage"
    assert [p for p in during if p.ready] == []
    assert mirror.problems == {}
    assert copies == 1
    assert bus_duplicates(system) == 0
    return run
