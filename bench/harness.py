"""What every part of the benchmark shares: the S3 server, the tools, random content, the engine driver."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ACCESS_KEY = "seqferrybench"
SECRET_KEY = "seqferrybench-secret"  # a throwaway credential for the local server only
TOOLS = ("seqferry", "aws-cli", "rclone", "s5cmd")

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
        self.master = f"http://127.0.0.1:{ports['master']}"
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

    def reclaim(self) -> None:
        """Ask the master to compact volumes now (deleted objects otherwise keep their disk space for a while)."""
        try:
            urllib.request.urlopen(f"{self.master}/vol/vacuum?garbageThreshold=0.01", timeout=120).close()
        except OSError as exc:
            print(f"  (SeaweedFS vacuum failed: {exc}; deleted objects keep their space until it runs)", flush=True)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# -- content --------------------------------------------------------------------------------------------


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

    def raw_command(self, tool: str, nas_path: str, bucket: str) -> list[str]:
        """The ceiling's clients: upload only (no listing, no comparison), no checksum, as many in flight as useful."""
        src = str(self.nas / nas_path.lstrip("/"))
        dest_key = nas_path.lstrip("/")
        if tool == "awscrt-raw":
            return [
                sys.executable, str(HERE / "raw_put.py"), "--endpoint", self.server.url, "--bucket", bucket,
                "--root", src, "--prefix", dest_key,
            ]  # fmt: skip
        if tool == "rclone-raw":
            return [
                str(BIN / "rclone"), "copy", src, f":s3:{bucket}/{dest_key}",
                "--s3-provider", "Other", "--s3-endpoint", self.server.url, "--s3-access-key-id", ACCESS_KEY,
                "--s3-secret-access-key", SECRET_KEY, "--s3-region", "us-east-1", "--s3-no-check-bucket",
                "--no-check-dest", "--s3-disable-checksum", "--s3-no-head", "--transfers", "256", "--checkers", "8",
                "--s3-chunk-size", "8M", "--s3-upload-concurrency", "8", "--config", "/dev/null", "-q",
            ]  # fmt: skip
        if tool == "s5cmd-raw":
            return [
                str(BIN / "s5cmd"), "--endpoint-url", self.server.url, "--numworkers", "512",
                "cp", "--concurrency", "8", src + "/*", f"s3://{bucket}/{dest_key}/",
            ]  # fmt: skip
        raise ValueError(tool)

    def run_peer(self, tool: str, nas_path: str, bucket: str) -> float:
        return self.measure(self.command(tool, nas_path, bucket), tool).seconds

    def run_raw(self, tool: str, nas_path: str, bucket: str) -> float:
        """Seconds of one raw upload: awscrt's own timing of its requests (as the engine's pass is timed inside
        its process), the command's for the others."""
        run = self.measure(self.raw_command(tool, nas_path, bucket), tool)
        if tool == "awscrt-raw":
            return float(json.loads(run.stdout.strip().splitlines()[-1])["seconds"])
        return run.seconds

    def measure(self, argv: list[str], what: str) -> Measured:
        """Run a command; its wall time, its peak RSS and its output.

        The peak is the high-water mark of the command's own memory (``VmHWM``), sampled every 20 ms while it runs:
        wait4's ru_maxrss would include this process's own size, which a child inherits at its start."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            process = subprocess.Popen(argv, env=self.env, stdout=out, stderr=err, text=True)
            peak = 0.0
            while process.poll() is None:
                peak = max(peak, high_water_mb(process.pid))
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            if process.returncode != 0:
                raise RuntimeError(f"{what} failed ({process.returncode}): {err.read()[-2000:]}")
            return Measured(elapsed, peak, out.read())

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

    def engine(self, nas_path: str, bucket: str, label: str) -> EngineProcess:
        """An engine process that runs a pass each time it is asked (``serve`` mode)."""
        argv = [
            sys.executable, str(HERE / "engine_driver.py"), "serve", "--endpoint", self.server.url,
            "--bucket", bucket, "--nas", str(self.nas), "--index", str(self.workdir / f"index-{label}.sqlite"),
            "--include", nas_path, "--quiet", "0",
        ]  # fmt: skip
        return EngineProcess(argv, self.env)

    def drop_bucket(self, bucket: str) -> None:
        """Delete a bucket and its objects (the run folder's copies would fill the disk otherwise)."""
        self.measure([str(BIN / "s5cmd"), "--endpoint-url", self.server.url, "rm", f"s3://{bucket}/*"], "s5cmd rm")
        self.measure([str(BIN / "s5cmd"), "--endpoint-url", self.server.url, "rb", f"s3://{bucket}"], "s5cmd rb")

    def count_objects(self, bucket: str, prefix: str = "") -> int:
        listed = self.measure(
            [str(BIN / "s5cmd"), "--endpoint-url", self.server.url, "ls", f"s3://{bucket}/{prefix}*"], "s5cmd ls"
        )
        return sum(1 for line in listed.stdout.splitlines() if line.strip() and not line.rstrip().endswith("/"))


def high_water_mb(pid: int) -> float:
    """A running process's peak resident set size (VmHWM) in MB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout: str


class EngineProcess:
    """The engine driver in ``serve`` mode: one process, passes on request, current and peak RSS with each."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"engine driver exited ({self.process.wait()}) before answering")
        result: dict[str, Any] = json.loads(line)
        return result

    def run_pass(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("pass\n")
        self.process.stdin.flush()
        outcome = self._read()
        if outcome["state"] != "SUCCESS":
            raise RuntimeError(f"engine pass did not succeed: {outcome}")
        return outcome

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        if self.process.wait(timeout=60) != 0:
            raise RuntimeError(f"engine driver exited with {self.process.returncode}")
