"""The scale curves as a picture (people read curves faster than tables): ``bench/results/<profile>.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def plot_scale(scale: dict[str, Any], out: Path, title: str) -> None:
    points = scale["points"]
    peer = scale["peer"]
    files = [p["files"] for p in points]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    engine = [p["seqferry"] for p in points]
    series = [
        ("seqferry, no-change pass", [e["no_change_s"] for e in engine], "o-", "tab:blue"),
        (
            "seqferry, no-change pass after a restart",
            [e["no_change_after_restart_s"] for e in engine],
            "o--",
            "tab:blue",
        ),
        ("seqferry, 1 % changed", [e["changed_1pct_s"] for e in engine], "s-", "tab:cyan"),
    ]
    measured = [(p["files"], p[peer]) for p in points if "no_change_s" in p.get(peer, {})]
    if measured:
        series += [
            (f"{peer}, no-change pass", [m["no_change_s"] for _, m in measured], "o-", "tab:orange"),
            (f"{peer}, 1 % changed", [m["changed_1pct_s"] for _, m in measured], "s-", "tab:red"),
        ]
    for label, values, style, colour in series:
        xs = files if label.startswith("seqferry") else [n for n, _ in measured]
        times.plot(xs, values, style, color=colour, label=label)
    times.axhline(3.0, color="grey", linestyle=":", linewidth=1, label="target: no-change pass over 1M files <= 3 s")
    times.set(xscale="log", yscale="log", xlabel="files (512 bytes, 1,000 per folder)", ylabel="seconds per pass")
    times.set_title("pass time")
    times.grid(True, which="both", alpha=0.3)
    times.legend(fontsize=8)
    memory.plot(files, [e["peak_rss_mb"] for e in engine], "o-", color="tab:blue", label="seqferry (engine process)")
    if measured:
        memory.plot(
            [n for n, _ in measured], [m["peak_rss_mb"] for _, m in measured], "o-", color="tab:orange", label=peer
        )
    memory.axhline(300, color="grey", linestyle=":", linewidth=1, label="target at 1M files: 300 MB")
    memory.set(xscale="log", xlabel="files", ylabel="peak RSS (MB)")
    memory.set_ylim(bottom=0)
    memory.set_title("peak memory")
    memory.grid(True, which="both", alpha=0.3)
    memory.legend(fontsize=8)
    last = engine[-1]
    figure.suptitle(
        f"{title} - seqferry no-change pass: {last['no_change_us_per_file']:.2f} us per file at {files[-1]:,} files",
        fontsize=10,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
