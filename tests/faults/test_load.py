"""Load: a burst of Transfer Requested events and a pile of manifests at once; all processed, memory bounded.

Memory is sampled for each service and for the emulator, whose state is what the scenario wrote.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
from scenario import Profile, Recorder, Row
from system import STATE_CHANGED, System, wait_until
from workload import RunFolder

from seqferry_shared.events.models import TransferRequested

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(3600)]

EMULATOR = "emulator"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class MemoryWatch:
    """Samples the resident memory of each service and of the emulator every half second."""

    def __init__(self, system: System, names: tuple[str, ...]) -> None:
        self.peak = dict.fromkeys((*names, EMULATOR), 0.0)
        self._stop = threading.Event()

        def processes() -> dict[str, subprocess.Popen[bytes] | None]:
            return {**{name: system[name].process for name in names}, EMULATOR: system.moto.process}

        def sample() -> None:
            while not self._stop.is_set():
                for name, process in processes().items():
                    if process is not None and process.poll() is None:
                        self.peak[name] = max(self.peak[name], rss_mib(process.pid))
                self._stop.wait(0.5)

        self._thread = threading.Thread(target=sample, daemon=True, name="memory")
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        return self.peak


class Progress:
    """What the bus said so far: per request, when its first state change and its end were seen."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.seen = 0
        self.first_change: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.executions: dict[str, set[str]] = {}
        self.manifest_requests: dict[str, str] = {}

    def update(self) -> bool:
        now = time.monotonic()
        events = self.system.bus.drain()
        for event in events[self.seen :]:
            detail = event["detail"]
            if event["detail-type"] == "Adhoc Manifest Processed":
                self.manifest_requests.update(dict.fromkeys(detail["request_ids"], detail["key"]))
            trigger = detail.get("trigger") or {}
            if event["detail-type"] != STATE_CHANGED or trigger.get("kind") != "request":
                continue
            self.executions.setdefault(trigger["id"], set()).add(detail["execution_id"])
            self.first_change.setdefault(trigger["id"], now)
            if detail["state"] in ("SUCCESS", "ERROR"):
                self.done.setdefault(trigger["id"], now)
        self.seen = len(events)
        return True

    def complete(self, requests: set[str], manifests: int) -> bool:
        return len(self.manifest_requests) >= manifests and requests | set(self.manifest_requests) <= set(self.done)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_a_burst_of_requests_and_manifests(system: System, profile: Profile, reliability: Recorder) -> None:
    system["executor"].env |= {"SEQFERRY_POLL_INTERVAL_S": "0.2"}
    services = ("executor", "notifier", "adhoc")
    system.start(*services)
    memory = MemoryWatch(system, services)
    runs = [RunFolder(system.nas, "miseq", reads="6,6", flowcell="v2-nano", seed=100 + i).write_all() for i in range(4)]
    events = boto3.client("events")
    # WHEN requests arrive in one burst (PutEvents, ten a call) and manifests are all dropped into adhoc/ at once
    sent: dict[str, float] = {}
    requests = [
        TransferRequested(request_id=f"burst-{i:05d}", includes=[runs[i % len(runs)].nas_path], requested_by="load")
        for i in range(profile.requests)
    ]
    for start in range(0, len(requests), 10):
        batch = requests[start : start + 10]
        entries = [
            {
                "EventBusName": system.names.bus,
                "Source": "lims.load",
                "DetailType": r.DETAIL_TYPE,
                "Detail": r.model_dump_json(exclude_none=True),
            }
            for r in batch
        ]
        now = time.monotonic()
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
        sent.update(dict.fromkeys((r.request_id for r in batch), now))
    manifests = [f"adhoc/load-{i:04d}.txt" for i in range(profile.manifests)]
    dropped = time.monotonic()
    for i, key in enumerate(manifests):
        system.s3.put_object(Bucket=system.names.bucket, Key=key, Body=f"{runs[i % len(runs)].nas_path}\n".encode())
    # THEN every request and every manifest is executed, each once
    progress = Progress(system)
    wait_until(
        lambda: progress.update() and progress.complete(set(sent), len(manifests)), 3000, "all executed", system=system
    )
    finished = time.monotonic()
    peak = memory.stop()
    system.settle(quiet_s=3, timeout_s=600)
    progress.update()
    first_change, done, executions, manifest_requests = (
        progress.first_change,
        progress.done,
        progress.executions,
        progress.manifest_requests,
    )
    to_change = [first_change[r] - sent[r] for r in sent]
    to_done = [done[r] - sent[r] for r in sent]
    from_drop = [done[r] - dropped for r in manifest_requests]
    twice = sum(len(found) - 1 for found in executions.values())
    reliability.add(
        Row(
            scenario="load",
            fault=f"{len(requests)} Transfer Requested in one burst + {len(manifests)} manifests at once",
            injected="PutEvents, ten a call, as fast as the emulator takes them; manifests put into adhoc/ together",
            count=len(requests) + len(manifests),
            lost=len(set(sent) - set(done)) + len(set(manifests) - set(manifest_requests.values())),
            duplicated=twice,
            recovery_s=finished - dropped,
            notes=f"request → first state change p50 {percentile(to_change, 0.5):.1f} s, p99 "
            f"{percentile(to_change, 0.99):.1f} s; → ended p50 {percentile(to_done, 0.5):.1f} s, p99 "
            f"{percentile(to_done, 0.99):.1f} s; manifest → ended p99 {percentile(from_drop, 0.99):.1f} s; peak RSS "
            + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in peak.items()),
            extra={"peak_rss_mib": peak},
        )
    )
    assert set(done) >= set(sent)
    assert sorted(set(manifest_requests.values())) == sorted(manifests)
    assert twice == 0
    # AND memory stays bounded: a service holding every message of the burst would show here, and so would an
    # emulator keeping a copy of what it was sent (it went past 12 GB when moto registered every object it made)
    assert max(peak.values()) < 1024, peak
