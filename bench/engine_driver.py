"""Drive seqferry's local engine in its own process, as the executor would, and report timings as JSON.

Modes:
- ``passes``: run N passes over the includes back to back (pass 1 uploads, later ones are no-change rescans);
  print one JSON line with each pass's seconds and counters and the process's peak RSS.
- ``serve``: read commands from stdin, one per line: ``pass`` runs a pass and prints its JSON line (seconds,
  counters, current and peak RSS); ``quit`` ends. Lets the harness change files between passes of one process.
- ``latency``: start a pass every ``--tick`` seconds (one active, at most one pending, as the executor's
  orchestration coalesces) until stdin closes; print the bytes every pass sent (for the write amplification).
  The harness reads verification times from the change index itself.
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from seqferry_executor.backends.local import LocalBackend, LocalBackendConfig
from seqferry_executor.settings import ExecutorSettings
from seqferry_shared.aws import ClientFactory


def build_settings(args: argparse.Namespace) -> ExecutorSettings:
    return ExecutorSettings(
        prefix="bench",
        bucket=args.bucket,
        aws_endpoint_url=args.endpoint,
        nas_root=Path(args.nas),
        sequencer_paths=args.sequencers,
        # The S3 server measured here has no CloudWatch Logs beside it: no per-file transfer log.
        local=LocalBackendConfig(index_path=Path(args.index), quiet_period_s=args.quiet, transfer_log="off"),
    )


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process's own memory in MB: VmRSS and VmHWM. Not getrusage's
    ru_maxrss, which an exec'd child inherits from the parent that started it (the harness, large at 1M files)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


async def wait_terminal(backend: LocalBackend, execution_id: str, poll_s: float = 0.01) -> dict[str, object]:
    while True:
        status = await backend.describe(execution_id)
        if status.state.terminal:
            return {
                "state": status.state.value,
                "counters": status.counters.model_dump(),
                "error": status.error.model_dump() if status.error else None,
            }
        await asyncio.sleep(poll_s)


async def one_pass(backend: LocalBackend, includes: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    execution_id = await backend.start("bench", includes)
    outcome = await wait_terminal(backend, execution_id)
    outcome["seconds"] = time.perf_counter() - started
    return outcome


async def passes(args: argparse.Namespace) -> None:
    settings = build_settings(args)
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        try:
            results = [await one_pass(backend, args.include) for _ in range(args.passes)]
        finally:
            await backend.close()
    print(json.dumps({"passes": results, "peak_rss_mb": rss_mb()[1]}), flush=True)


async def serve(args: argparse.Namespace) -> None:
    settings = build_settings(args)
    loop = asyncio.get_running_loop()
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        current, peak = rss_mb()
        print(json.dumps({"ready": True, "rss_mb": current, "peak_rss_mb": peak}), flush=True)
        try:
            while (line := await loop.run_in_executor(None, sys.stdin.readline)) and line.strip() != "quit":
                outcome = await one_pass(backend, args.include)
                outcome["rss_mb"], outcome["peak_rss_mb"] = rss_mb()
                print(json.dumps(outcome), flush=True)
        finally:
            await backend.close()


async def latency(args: argparse.Namespace) -> None:
    settings = build_settings(args)
    loop = asyncio.get_running_loop()
    closed = loop.run_in_executor(None, sys.stdin.read)  # the harness closes stdin when the run is delivered
    sent = 0
    count = 0
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        active: str | None = None
        pending = False
        next_tick = time.monotonic()
        print(json.dumps({"ready": True}), flush=True)
        try:
            while not closed.done() or active is not None:
                if time.monotonic() >= next_tick and not closed.done():
                    next_tick += args.tick
                    if active is None:
                        active = await backend.start("bench", args.include)
                    else:
                        pending = True
                if active is not None:
                    status = await backend.describe(active)
                    if status.state.terminal:
                        sent += status.counters.bytes_transferred
                        count += 1
                        active = await backend.start("bench", args.include) if pending else None
                        pending = False
                await asyncio.sleep(0.01)
        finally:
            await backend.close()
    print(json.dumps({"bytes_transferred": sent, "passes": count}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["passes", "serve", "latency"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--nas", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--include", action="append", required=True)
    parser.add_argument("--sequencers", default="/sequencers/incoming/nextseq2000=nextseq2000")
    parser.add_argument("--quiet", type=float, default=2.0)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--tick", type=float, default=1.0)
    args = parser.parse_args()
    mode = {"passes": passes, "serve": serve, "latency": latency}[args.mode]
    asyncio.run(mode(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
