"""(f) Scale curves: passes over 10,000, 100,000 and 1,000,000 files of 512 bytes (1,000 per folder).

At each size, one bucket grows with the tree: an engine process uploads the new files (timed: the first pass at
that size), then a *fresh* engine process — as after a restart — runs a no-change pass (each folder's files looked
up in the change index), more no-change passes (each folder settled from its digest; the best is kept), a pass
with 1 % of the files rewritten, and reports its peak RSS. The fastest peer at no-change passes (s5cmd, which
compares size and time as the engine's objects allow) then syncs the same tree against the same bucket: a no-change
pass (it must find nothing to upload, which also checks that the bucket holds every file) and a pass with another
1 % rewritten; its peak RSS comes from wait4. The peer runs at a size only while its no-change pass, extrapolated
from the last size, stays within the time budget.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

from harness import BIN, Runner

SCALE_NAS_PATH = "/bench/scale"
FILE_SIZE = 512
PER_FOLDER = 1000
CHANGED_SHARE = 100  # one file in a hundred
PEER = "s5cmd"


def grow_tree(root: Path, have: int, want: int) -> None:
    """Files ``have`` .. ``want``-1, 1,000 per folder, written an hour ago (so no quiet period applies)."""
    data = os.urandom(FILE_SIZE)
    old = time.time() - 3600
    for number in range(have, want):
        folder = root / f"d{number // PER_FOLDER:04d}"
        if number % PER_FOLDER == 0 or number == have:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"f{number:07d}.bin"
        with open(path, "wb") as handle:
            handle.write(data)
        os.utime(path, (old, old))


def rewrite_share(root: Path, count: int, offset: int, *, backdate_s: float = 0) -> int:
    """Rewrite one file in CHANGED_SHARE (same size, new content, mtime ``backdate_s`` ago); returns how many.

    The engine's rewrites are backdated a little: the peer compares a file's mtime with the object's LastModified,
    which S3 keeps to the second, so a file rewritten and uploaded within the same second would look newer than its
    object to it and be sent again."""
    data = os.urandom(FILE_SIZE)
    when = time.time() - backdate_s
    changed = 0
    for number in range(offset % CHANGED_SHARE, count, CHANGED_SHARE):
        path = root / f"d{number // PER_FOLDER:04d}" / f"f{number:07d}.bin"
        with open(path, "wb") as handle:
            handle.write(data)
        if backdate_s:
            os.utime(path, (when, when))
        changed += 1
    return changed


def per_file_us(seconds: float, files: int) -> float:
    return round(seconds / files * 1e6, 2)


def bench_scale(runner: Runner, sizes: tuple[int, ...], repeats: int, peer_budget_s: float) -> dict[str, Any]:
    root = runner.nas / SCALE_NAS_PATH.lstrip("/")
    bucket = runner.new_bucket("scale")
    points: list[dict[str, Any]] = []
    have = 0
    peer_last: tuple[int, float] | None = None
    for rounds, size in enumerate(sizes, start=1):
        started = time.perf_counter()
        grow_tree(root, have, size)
        generated_s = time.perf_counter() - started
        new = size - have
        have = size
        setup = runner.engine(SCALE_NAS_PATH, bucket, "scale")
        first = setup.run_pass()
        setup.close()
        if first["counters"]["files_verified"] < new:
            raise RuntimeError(f"scale {size}: the first pass verified {first['counters']['files_verified']} of {new}")
        engine = runner.engine(SCALE_NAS_PATH, bucket, "scale")
        idle_rss = engine.ready["rss_mb"]
        cold = engine.run_pass()
        warm = [engine.run_pass() for _ in range(repeats)]
        changed = rewrite_share(root, size, rounds, backdate_s=10)
        one_percent = engine.run_pass()
        engine.close()
        for outcome in (cold, *warm):
            if outcome["counters"]["files_transferred"] or outcome["counters"]["files_skipped"] != size:
                raise RuntimeError(f"scale {size}: a no-change pass was not one: {outcome['counters']}")
        if one_percent["counters"]["files_verified"] != changed:
            raise RuntimeError(f"scale {size}: {changed} files changed, {one_percent['counters']} sent")
        best = min(p["seconds"] for p in warm)
        point: dict[str, Any] = {
            "files": size,
            "generated_s": round(generated_s, 1),
            "seqferry": {
                "upload_new_files": new,
                "upload_s": round(first["seconds"], 2),
                "upload_objects_s": round(new / first["seconds"], 1),
                "no_change_after_restart_s": round(cold["seconds"], 3),
                "no_change_s": round(best, 3),
                "changed_1pct_s": round(one_percent["seconds"], 3),
                "changed_files": changed,
                "peak_rss_mb": round(max(p["peak_rss_mb"] for p in (cold, *warm, one_percent)), 1),
                "idle_rss_mb": round(idle_rss, 1),
                "no_change_us_per_file": per_file_us(best, size),
                "no_change_after_restart_us_per_file": per_file_us(cold["seconds"], size),
            },
        }
        print(
            f"  scale {size:>9,} files: seqferry upload {new:,} in {first['seconds']:.1f} s; no-change "
            f"{best:.3f} s (after a restart {cold['seconds']:.3f} s), 1 % changed {one_percent['seconds']:.3f} s, "
            f"peak RSS {point['seqferry']['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        estimate = peer_last[1] * size / peer_last[0] if peer_last else 0.0
        if estimate > peer_budget_s:
            point[PEER] = {"skipped": f"no-change pass estimated at {estimate:.0f} s (> {peer_budget_s:.0f} s budget)"}
        else:
            point[PEER] = bench_peer(runner, bucket, root, size, rounds + CHANGED_SHARE // 2)
            peer_last = (size, point[PEER]["no_change_s"])
            print(
                f"  scale {size:>9,} files: {PEER} no-change {point[PEER]['no_change_s']:.2f} s, 1 % changed "
                f"{point[PEER]['changed_1pct_s']:.2f} s, peak RSS {point[PEER]['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        points.append(point)
    return {"file_bytes": FILE_SIZE, "files_per_folder": PER_FOLDER, "peer": PEER, "points": points, **growth(points)}


def bench_peer(runner: Runner, bucket: str, root: Path, size: int, offset: int) -> dict[str, Any]:
    argv = [
        str(BIN / "s5cmd"), "--endpoint-url", runner.server.url, "--numworkers", "256",
        "sync", str(root) + "/", f"s3://{bucket}/{SCALE_NAS_PATH.lstrip('/')}/",
    ]  # fmt: skip
    still = runner.measure(argv, PEER)
    uploads = [line for line in still.stdout.splitlines() if line.startswith("cp ")]
    if uploads:
        raise RuntimeError(f"{PEER} found {len(uploads)} files missing from the engine's bucket, e.g. {uploads[0]}")
    changed = rewrite_share(root, size, offset)
    after = runner.measure(argv, PEER)
    sent = sum(1 for line in after.stdout.splitlines() if line.startswith("cp "))
    if sent != changed:
        raise RuntimeError(f"{PEER} sent {sent} files of {changed} changed")
    return {
        "no_change_s": round(still.seconds, 3),
        "changed_1pct_s": round(after.seconds, 3),
        "peak_rss_mb": round(max(still.peak_rss_mb, after.peak_rss_mb), 1),
        "no_change_us_per_file": per_file_us(still.seconds, size),
    }


def growth(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Marginal cost per added file between consecutive sizes (time and memory)."""
    steps = []
    for low, high in itertools.pairwise(points):
        added = high["files"] - low["files"]
        engine_low, engine_high = low["seqferry"], high["seqferry"]
        step: dict[str, Any] = {
            "from": low["files"],
            "to": high["files"],
            "seqferry_no_change_us_per_added_file": per_file_us(
                engine_high["no_change_s"] - engine_low["no_change_s"], added
            ),
            "seqferry_rss_bytes_per_added_file": round(
                (engine_high["peak_rss_mb"] - engine_low["peak_rss_mb"]) * 1e6 / added, 1
            ),
        }
        peer_low, peer_high = low.get(PEER, {}), high.get(PEER, {})
        if "no_change_s" in peer_low and "no_change_s" in peer_high:
            step[f"{PEER}_no_change_us_per_added_file"] = per_file_us(
                peer_high["no_change_s"] - peer_low["no_change_s"], added
            )
            step[f"{PEER}_rss_bytes_per_added_file"] = round(
                (peer_high["peak_rss_mb"] - peer_low["peak_rss_mb"]) * 1e6 / added, 1
            )
        steps.append(step)
    return {"growth": steps}
