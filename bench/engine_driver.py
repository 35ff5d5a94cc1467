"""Drive seqferry's local engine in its own process, as the executor would, and report timings as JSON.

Modes:
- ``passes``: run N passes over the includes back to back (pass 1 uploads, later ones are no-change rescans);
  print one JSON line with each pass's seconds and counters and the process's peak RSS.
- ``latency``: start a pass every ``--tick`` seconds (one active, at most one pending, as the executor's
  orchestration coalesces) while the harness writes files; for every watched key print the moment the engine
  recorded it verified. Runs until ``--duration`` seconds have passed with every watched key verified.
"""

import argparse
import asyncio
import json
import resource
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


async def passes(args: argparse.Namespace) -> None:
    settings = build_settings(args)
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        results = []
        try:
            for _ in range(args.passes):
                started = time.perf_counter()
                execution_id = await backend.start("bench", args.include)
                outcome = await wait_terminal(backend, execution_id)
                outcome["seconds"] = time.perf_counter() - started
                results.append(outcome)
        finally:
            await backend.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"passes": results, "peak_rss_mb": peak_mb}), flush=True)


async def latency(args: argparse.Namespace) -> None:
    settings = build_settings(args)
    watched = {line.strip() for line in Path(args.watch).read_text().splitlines() if line.strip()}
    verified_at: dict[str, float] = {}
    async with ClientFactory(settings) as clients:
        backend = await LocalBackend.create(settings=settings, clients=clients)
        index = backend._engine._index  # the moment a key is recorded is the moment it is verified
        active: str | None = None
        pending = False
        deadline = time.time() + args.duration
        next_tick = time.monotonic()
        print(json.dumps({"ready": True}), flush=True)
        try:
            while time.time() < deadline or len(verified_at) < len(watched):
                if time.time() > deadline + 120:
                    break
                now = time.monotonic()
                if now >= next_tick:
                    next_tick += args.tick
                    if active is None:
                        active = await backend.start("bench", args.include)
                    else:
                        pending = True
                if active is not None and (await backend.describe(active)).state.terminal:
                    active = await backend.start("bench", args.include) if pending else None
                    pending = False
                stamp = time.time()
                for key in watched - verified_at.keys():
                    if key in index.entries:
                        verified_at[key] = stamp
                await asyncio.sleep(0.02)
        finally:
            await backend.close()
    print(json.dumps({"verified_at": verified_at}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["passes", "latency"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--nas", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--include", action="append", required=True)
    parser.add_argument("--sequencers", default="/sequencers/incoming/nextseq2000=nextseq2000")
    parser.add_argument("--quiet", type=float, default=2.0)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--watch", help="file listing the keys whose verification time to report")
    args = parser.parse_args()
    asyncio.run(passes(args) if args.mode == "passes" else latency(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
