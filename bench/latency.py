"""(d) Latency: a run folder written the way its instrument writes it, shipped while it is written.

The workload is the simulator's NextSeq 2000 timeline (``seqferry_simulator``), sped up: RunInfo.xml and the sample
sheet first; then cycle by cycle each surface's CBCL grows in four appends over the second half of the cycle, the
cycle's InterOp files appear at its end, filter files (one per tile) at cycle 26, cluster positions after cycle 1;
at the end RTA merges InterOp, the control software rewrites RunParameters.xml, and the markers follow
(RTAComplete.txt, RunCompletionStatus.xml, CopyComplete.txt last). Files that grow are what makes early sending
risky: a file sent while it still grows is sent again, which the write amplification (bytes sent / bytes
delivered) shows next to the latency.

For every file of the run: its last write (final mtime) → the moment the engine recorded exactly that version as
verified (its row in the change index, polled every 50 ms). Through the services (scheduler ticking every second,
executor with the local backend; moto as bus, queues and table, the bucket on SeaweedFS as for every other part of
the benchmark), or without them (the engine driver passing every second against SeaweedFS).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import BIN, HERE, Runner

from seqferry_shared.sequencers import Instrument
from seqferry_shared.testing.motoserver import free_port, start_moto_server
from seqferry_simulator.domain.pace import Pace
from seqferry_simulator.domain.spec import new_run_spec
from seqferry_simulator.writer import RunWriter

INSTRUMENT = Instrument.NEXTSEQ2000
SEQUENCER_PATH = "/sequencers/incoming/nextseq2000"
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class LatencyWorkload:
    reads: str  # cycles per read, e.g. "16,4,4,16"
    cycles_per_second: float
    scale: float  # base-call file size factor (1.0: real size)


class IndexWatcher(threading.Thread):
    """Polls the engine's change index: when each (key, size, mtime) was first recorded as verified."""

    def __init__(self, index: Path) -> None:
        super().__init__(daemon=True)
        self.index = index
        self.first_seen: dict[tuple[str, int, int], float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with sqlite3.connect(f"file:{self.index}?mode=ro", uri=True, timeout=1) as conn:
                    rows = conn.execute("SELECT key, size, mtime_ns FROM files").fetchall()
            except sqlite3.Error:
                rows = []
            stamp = time.time()
            for key, size, mtime_ns in rows:
                self.first_seen.setdefault((key, size, mtime_ns), stamp)
            time.sleep(POLL_S)

    def delivered(self, files: dict[str, tuple[int, int]]) -> bool:
        return all((key, size, mtime) in self.first_seen for key, (size, mtime) in files.items())

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def write_run(nas: Path, workload: LatencyWorkload) -> Path:
    """Write one run folder in instrument order, each slot at its time; returns the folder."""
    spec = new_run_spec(
        INSTRUMENT, seed=7, started_at=datetime.now(UTC), reads=workload.reads, scale=workload.scale, chunks=4
    )
    writer = RunWriter(
        spec, nas / SEQUENCER_PATH.lstrip("/"), Pace.of(str(workload.cycles_per_second), spec.profile.cadence)
    )
    origin = time.monotonic()
    while not writer.done:
        due = writer.next_time()
        assert due is not None
        time.sleep(max(0.0, origin + due - time.monotonic()))
        writer.advance_to(time.monotonic() - origin)
    return writer.folder


def final_versions(nas: Path, folder: Path) -> dict[str, tuple[int, int]]:
    versions = {}
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            versions[path.relative_to(nas).as_posix()] = (st.st_size, st.st_mtime_ns)
    return versions


def kind_of(key: str) -> str:
    name = key.rsplit("/", 1)[1]
    if name in INSTRUMENT.markers:
        return "markers"
    if "/BaseCalls/" in key and name.endswith(".cbcl"):
        return "base calls"
    if name.endswith((".filter", ".locs")):
        return "filters, positions"
    if "/InterOp/" in key:
        return "InterOp"
    return "run metadata"


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def summarize(versions: dict[str, tuple[int, int]], watcher: IndexWatcher, sent: int) -> dict[str, Any]:
    missing = [key for key, (size, mtime) in versions.items() if (key, size, mtime) not in watcher.first_seen]
    if missing:
        raise RuntimeError(f"{len(missing)} files of the run never verified as written, e.g. {missing[0]}")
    latencies = {key: watcher.first_seen[(key, size, mtime)] - mtime / 1e9 for key, (size, mtime) in versions.items()}
    samples = list(latencies.values())
    kinds: dict[str, list[float]] = {}
    for key, seconds in latencies.items():
        kinds.setdefault(kind_of(key), []).append(seconds)
    delivered = sum(size for size, _ in versions.values())
    return {
        "samples": len(samples),
        "p50_s": round(statistics.median(samples), 3),
        "p99_s": round(percentile(samples, 0.99), 3),
        "max_s": round(max(samples), 3),
        "bytes_delivered": delivered,
        "bytes_sent": sent,
        "write_amplification": round(sent / delivered, 4),
        "by_kind": {
            kind: {
                "files": len(values),
                "p50_s": round(statistics.median(values), 3),
                "p99_s": round(percentile(values, 0.99), 3),
            }
            for kind, values in sorted(kinds.items())
        },
    }


def wait_delivered(watcher: IndexWatcher, versions: dict[str, tuple[int, int]], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not watcher.delivered(versions) and time.monotonic() < deadline:
        time.sleep(0.2)


def bench_latency_services(runner: Runner, workload: LatencyWorkload) -> dict[str, Any]:
    """The real thing: moto (bus, queues, table), the scheduler ticking every second, the executor with the local
    backend shipping to the bucket on SeaweedFS (``AWS_ENDPOINT_URL_S3``: moto's S3, one Python process, takes a few
    hundred objects a second and would be what is measured); the run written into today's folder; verification read
    from the engine's index."""
    workdir = runner.workdir / "services"
    nas = workdir / "nas"
    (workdir / "var" / "state").mkdir(parents=True)
    moto = start_moto_server(log_path=runner.workdir / "moto.log")
    executor_port = free_port()
    env = {
        **runner.env,
        "AWS_ENDPOINT_URL": moto.url,
        "SEQFERRY_PREFIX": "benchlat",
        "SEQFERRY_ENVIRONMENT": "dev",
        "SEQFERRY_NAS_ROOT": str(nas),
        "SEQFERRY_SEQUENCER_PATHS": f"{SEQUENCER_PATH}={INSTRUMENT.value}",
        "SEQFERRY_BACKEND": "local",
        "SEQFERRY_SQS_WAIT_TIME_S": "1",
        "SEQFERRY_INTERVAL": "1s",
        "SEQFERRY_LAB_TIME_ZONE": "UTC",
        "SEQFERRY_LOCAL__TRANSFER_LOG": "off",
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    log = (runner.workdir / "services.log").open("wb")
    try:
        subprocess.run([str(BIN / "seqferry-bootstrap")], env=env, cwd=workdir, check=True, capture_output=True)
        subprocess.run(
            [str(BIN / "aws"), "s3", "mb", "s3://benchlat-runs"], env=runner.env, check=True, capture_output=True
        )
        env["AWS_ENDPOINT_URL_S3"] = runner.server.url
        for service, port in (("seqferry-executor", executor_port), ("seqferry-scheduler", free_port())):
            service_env = {**env, "SEQFERRY_HTTP_PORT": str(port)}
            processes.append(
                subprocess.Popen([str(BIN / service)], env=service_env, cwd=workdir, stdout=log, stderr=log)
            )
        index = workdir / "var" / "state" / "local-index.sqlite"
        deadline = time.monotonic() + 60
        while not index.exists():
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"executor did not start; see {runner.workdir / 'services.log'}")
            time.sleep(0.2)
        watcher = IndexWatcher(index)
        watcher.start()
        folder = write_run(nas, workload)
        versions = final_versions(nas, folder)
        wait_delivered(watcher, versions)
        time.sleep(2)  # the last executions' counters reach the executor's records
        watcher.stop()
        with urllib.request.urlopen(f"http://127.0.0.1:{executor_port}/executions?limit=200", timeout=10) as answer:
            executions = json.load(answer)
        sent = sum(e["counters"]["bytes_transferred"] for e in executions)
        return {**summarize(versions, watcher, sent), "mode": "services", "executions": len(executions)}
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        moto.stop()


def bench_latency_engine(runner: Runner, workload: LatencyWorkload) -> dict[str, Any]:
    """Without the services: the engine driver passes every second (one active, one pending) against SeaweedFS."""
    bucket = runner.new_bucket("latency")
    nas = runner.workdir / "latency-nas"
    index = runner.workdir / "index-latency.sqlite"
    argv = [
        sys.executable, str(HERE / "engine_driver.py"), "latency", "--endpoint", runner.server.url,
        "--bucket", bucket, "--nas", str(nas), "--index", str(index), "--include", SEQUENCER_PATH,
        "--sequencers", f"{SEQUENCER_PATH}={INSTRUMENT.value}", "--tick", "1",
    ]  # fmt: skip
    driver = subprocess.Popen(argv, env=runner.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert driver.stdout is not None
    assert driver.stdin is not None
    json.loads(driver.stdout.readline())  # ready
    watcher = IndexWatcher(index)
    watcher.start()
    folder = write_run(nas, workload)
    versions = final_versions(nas, folder)
    wait_delivered(watcher, versions)
    driver.stdin.close()
    report = json.loads(driver.stdout.read().strip().splitlines()[-1])
    driver.wait(timeout=60)
    watcher.stop()
    return {
        **summarize(versions, watcher, report["bytes_transferred"]),
        "mode": "engine-loop",
        "passes": report["passes"],
    }


def bench_latency(runner: Runner, workload: LatencyWorkload, mode: str) -> dict[str, Any]:
    services = (BIN / "seqferry-executor").exists() and (BIN / "seqferry-scheduler").exists()
    if mode in ("services", "auto") and services:
        try:
            return bench_latency_services(runner, workload)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            if mode == "services":
                raise
            print(f"  latency through the services failed ({exc}); measuring the engine loop instead", flush=True)
    os.makedirs(runner.workdir / "latency-nas", exist_ok=True)
    return bench_latency_engine(runner, workload)
