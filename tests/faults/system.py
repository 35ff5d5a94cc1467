"""The system under fault: each service its own process, an emulator behind a fault proxy, and observers.

Services reach the emulator only through the fault proxy (their ``AWS_ENDPOINT_URL`` is the proxy); the test's
own observers talk to the emulator directly, so a fault never hides what happened. The observers count every
event: a tap queue on the bus, a queue subscribed to the SNS topic, and a webhook receiver.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from seqferry_shared.bootstrap import bootstrap
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.state.kinds import LISTING_INDEX, LISTING_PK, NOTIFIER_NOTICE, NOTIFIER_RUN, Listing
from seqferry_shared.testing.bustap import BusTap
from seqferry_shared.testing.faultproxy import FaultProxyProcess, start_fault_proxy
from seqferry_shared.testing.motoserver import MotoServer, free_port, start_moto_server

SEQUENCER_PATHS = (
    "/sequencers/incoming/miseq=miseq,/sequencers/incoming/novaseq=novaseq6000,"
    "/sequencers/incoming/nextseq2000=nextseq2000"
)
MODULES = {
    "scheduler": "seqferry_scheduler",
    "executor": "seqferry_executor",
    "notifier": "seqferry_notifier",
    "adhoc": "seqferry_adhoc",
    "simulator": "seqferry_simulator",
}
COMPLETED = "Run Transfer Completed"
STATE_CHANGED = "Transfer Execution State Changed"


class ServiceProcess:
    """One service as its own process (``python -m seqferry_<name>``), started, killed and restarted at will."""

    def __init__(self, name: str, env: dict[str, str], port: int, log: Path) -> None:
        self.name = name
        self.env = env
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.wrap: list[str] = []  # a command the service runs under (e.g. unshare)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        with self.log.open("ab") as out:
            out.write(f"\n===== start #{self.starts + 1} at {time.time():.3f} =====\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [*self.wrap, sys.executable, "-m", MODULES[self.name.partition("#")[0]]],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def get(self, path: str, timeout_s: float = 5.0) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout_s) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"null")
            except ValueError:
                return exc.code, body.decode(errors="replace")

    def ready(self) -> bool:
        try:
            return self.get("/readyz", timeout_s=5)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        started = time.monotonic()
        while True:
            if not self.alive:
                raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
            if self.ready():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"{self.name} not ready within {timeout_s} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.kills += 1

    def terminate(self, timeout_s: float = 60.0) -> tuple[int, float]:
        """SIGTERM and wait; returns the exit code and how long the process took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout_s} s of SIGTERM") from None
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(AssertionError):
                self.terminate(timeout_s=40)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class WebhookReceiver:
    """A local HTTP server that records every POSTed notification (optionally failing the first ones)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    else:
                        receiver.received.append(json.loads(body))
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def payloads(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [p["seqferry"] for p in self.received if kind is None or p["seqferry"]["type"] == kind]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SnsTap:
    """A queue subscribed to the notification topic: every SNS message, in arrival order."""

    def __init__(self, topic_arn: str, name: str) -> None:
        self.sqs = boto3.client("sqs")
        self.url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return list(self.seen)
            for message in messages:
                self.seen.append(json.loads(json.loads(message["Body"])["Message"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.drain() if kind is None or m["type"] == kind]


@dataclass
class Mirror:
    files: int
    missing: list[str]
    different: list[str]
    extra_versions: dict[str, int]

    @property
    def lost(self) -> int:
        return len(self.missing) + len(self.different)

    @property
    def duplicated(self) -> int:
        return sum(self.extra_versions.values())

    @property
    def problems(self) -> dict[str, Any]:
        """What is wrong: files missing from S3, objects that differ from their file, bytes uploaded twice."""
        found = {"missing": self.missing, "different": self.different, "uploaded twice": self.extra_versions}
        return {what: keys for what, keys in found.items() if keys}


@dataclass
class System:
    root: Path
    moto: MotoServer
    proxy: FaultProxyProcess | None
    prefix: str
    settings: ServiceSettings
    services: dict[str, ServiceProcess]
    nas: Path
    bus: BusTap
    sns: SnsTap
    webhook: WebhookReceiver
    names: Any = None
    marks: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = self.settings.names
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.ddb = boto3.client("dynamodb")

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def replica(self, name: str) -> ServiceProcess:
        """Another process of service ``name`` (``<name>#2``, ...) with its own port and log."""
        number = 1 + sum(1 for key in self.services if key.partition("#")[0] == name)
        key = f"{name}#{number}"
        port = free_port()
        env = dict(self.services[name].env) | {"SEQFERRY_HTTP_PORT": str(port)}
        self.services[key] = ServiceProcess(key, env, port, self.root / f"{name}-{number}.log")
        return self.services[key]

    def notice(self, run_id: str) -> dict[str, Any] | None:
        """The completion notice of a run, as the notifier stored it."""
        item = self.ddb.get_item(
            TableName=self.names.table,
            Key=NOTIFIER_NOTICE.child(NOTIFIER_RUN.key(run_id), "completed").item(),
            ConsistentRead=True,
        ).get("Item")
        return json.loads(item[NOTIFIER_NOTICE.document]["S"]) if item else None

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self, *names: str, timeout_s: float = 90.0) -> None:
        for name in names:
            self.services[name].start()
        for name in names:
            self.services[name].wait_ready(timeout_s)

    def close(self) -> None:
        for service in self.services.values():
            service.stop()
        self.webhook.close()
        if self.proxy is not None:
            self.proxy.stop()
        self.moto.stop()

    def check_alive(self, *names: str) -> None:
        for name in names or tuple(s.name for s in self.services.values() if s.starts):
            service = self.services[name]
            assert service.alive, f"{name} died:\n{service.log_tail()}"

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every started service's log, for a failure message."""
        started = [s for s in self.services.values() if s.starts]
        return "".join(f"\n--- {s.name} ---\n{s.log_tail(lines)}" for s in started)

    # -- what happened ----------------------------------------------------------------------------------------
    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.bus.drain() if detail_type is None or e["detail-type"] == detail_type]

    def completions(self) -> Counter[str]:
        return Counter(e["detail"]["run_id"] for e in self.events(COMPLETED))

    def queue_depths(self) -> dict[str, int]:
        depths = {}
        for spec in self.names.queues:
            for name in (spec.name, spec.dlq_name):
                url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                attrs = self.sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                depths[name] = int(attrs["ApproximateNumberOfMessages"]) + int(
                    attrs["ApproximateNumberOfMessagesNotVisible"]
                )
        return depths

    def dlq_messages(self, role: str) -> list[dict[str, Any]]:
        """Every message in a role's dead-letter queue (received without hiding them: visibility 0)."""
        spec = getattr(self.names, f"{role}_queue")
        url = self.sqs.get_queue_url(QueueName=spec.dlq_name)["QueueUrl"]
        found: dict[str, dict[str, Any]] = {}
        for _ in range(50):
            response = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )  # fmt: skip
            for message in response.get("Messages", []):
                found.setdefault(message["MessageId"], message)
            if len(found) >= self.queue_depths()[spec.dlq_name]:
                break
        return list(found.values())

    def pending_notices(self) -> int:
        response = self.ddb.query(
            TableName=self.names.table,
            IndexName=LISTING_INDEX,
            KeyConditionExpression=f"{LISTING_PK} = :pk",
            ExpressionAttributeValues={":pk": {"S": Listing.NOTIFIER_NOTICES_PENDING.value}},
            Select="COUNT",
        )
        return int(response["Count"])

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.names.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj
        return found

    def object_versions(self, prefix: str = "") -> dict[str, list[tuple[str, int]]]:
        """Object key → (ETag, size) of each of its versions."""
        versions: dict[str, list[tuple[str, int]]] = {}
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.names.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                versions.setdefault(version["Key"], []).append((version["ETag"], int(version["Size"])))
        return versions

    def multipart_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.names.bucket).get("Uploads", []))

    def nas_files(self, *folders: Path) -> dict[str, Path]:
        """Object key → file, for every file under ``folders`` (the object key is the path under the NAS root)."""
        found = {}
        for folder in folders:
            for path in folder.rglob("*"):
                if path.is_file():
                    found[str(path.relative_to(self.nas))] = path
        return found

    def mirror_check(self, files: dict[str, Path]) -> Mirror:
        """Compare every file with its object, byte for byte (SHA-256 of both), and count repeated uploads.

        A file written over time legitimately has several object versions (one per state it was shipped in);
        two versions with the same ETag and size are the same bytes uploaded twice.
        """
        versions = self.object_versions()
        missing, different = [], []
        for key, path in files.items():
            if key not in versions:
                missing.append(key)
                continue
            body = self.s3.get_object(Bucket=self.names.bucket, Key=key)["Body"].read()
            if hashlib.sha256(body).digest() != hashlib.sha256(path.read_bytes()).digest():
                different.append(key)
        extra = {
            key: len(found) - len(set(found))
            for key, found in versions.items()
            if key in files and len(found) > len(set(found))
        }
        return Mirror(files=len(files), missing=missing, different=different, extra_versions=extra)

    def settle(self, *, quiet_s: float = 3.0, timeout_s: float = 120.0) -> float:
        """Wait until nothing a test counts changes any more; returns the seconds it took.

        Settled: no notice pending in the outbox, the queues of the running consumers empty (the executor's only
        when no scheduler is ticking), and the counted
        outcomes (announcements on the bus, SNS and the webhook, dead letters) unchanged for ``quiet_s``, which
        should exceed the outbox lease and the sweep interval. The counts a test then takes are of a settled
        state, not of a moment picked by a sleep.
        """
        started = time.monotonic()
        last: tuple[Any, ...] | None = None
        quiet_since = time.monotonic()
        while True:
            self.check_alive()
            depths = self.queue_depths()
            # The executor's queue is never empty for long while the scheduler ticks; windows are not counted.
            ticking = any(s.alive for key, s in self.services.items() if key.startswith("scheduler"))
            consuming = [
                spec.name
                for spec in self.names.queues
                if self.services[spec.name.rsplit("-", 1)[1]].alive
                and not (spec == self.names.executor_queue and ticking)
            ]
            fingerprint = (
                len(self.events(COMPLETED)),
                len(self.events("Run Transfer Failed")),
                len(self.sns.drain()),
                len(self.webhook.payloads()),
                tuple(depths[spec.dlq_name] for spec in self.names.queues),
            )
            busy = self.pending_notices() > 0 or any(depths[name] for name in consuming)
            if busy or fingerprint != last:
                last = fingerprint
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise AssertionError(
                    f"system did not settle within {timeout_s} s: queues {depths}, pending notices "
                    f"{self.pending_notices()}, announced {dict(self.completions())}, last counts {last}"
                )
            time.sleep(0.25)


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, *, system: System | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        if system is not None:
            system.check_alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "" if system is None else system.log_tails()
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{tails}")
        time.sleep(0.2)


def service_env(
    name: str, *, endpoint: str, prefix: str, nas: Path, state: Path, port: int, webhook: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQFERRY_", "AWS_", "OTEL_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            # Each service signs with its own key id, so the fault proxy can tell them apart.
            "AWS_ACCESS_KEY_ID": name,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE": "true",
            "PYTHONUNBUFFERED": "1",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "SEQFERRY_PREFIX": prefix,
            "SEQFERRY_ENVIRONMENT": "test",
            "SEQFERRY_HTTP_PORT": str(port),
            "SEQFERRY_SQS_WAIT_TIME_S": "1",
            "SEQFERRY_SEQUENCER_PATHS": SEQUENCER_PATHS,
            "SEQFERRY_NAS_ROOT": str(nas),
        }
    )
    if name == "scheduler":
        env |= {"SEQFERRY_INTERVAL": "2s"}
    elif name == "executor":
        env |= {
            "SEQFERRY_BACKEND": "local",
            "SEQFERRY_POLL_INTERVAL_S": "0.5",
            "SEQFERRY_LOCAL__QUIET_PERIOD_S": "1",
            "SEQFERRY_LOCAL__INDEX_PATH": str(state / "executor-index.sqlite"),
        }
    elif name == "notifier":
        env |= {
            "SEQFERRY_WEBHOOK_URL": webhook,
            "SEQFERRY_WEBHOOK_BACKOFF_S": "0.2",
            "SEQFERRY_SWEEP_INTERVAL_S": "1",
            "SEQFERRY_RECHECK_INTERVAL_S": "5",
            "SEQFERRY_NOTICE_RETRY_BASE_S": "1",
            # a notice left by a killed notifier is taken over after the send deadline and this lease (25 s), not
            # after the defaults' 2 minutes; the deadline stays well above a PutEvents retried through throttling
            "SEQFERRY_NOTICE_LEASE_S": "5",
            "SEQFERRY_NOTICE_SEND_TIMEOUT_S": "20",
        }
    elif name == "simulator":
        env |= {"SEQFERRY_STATE_DIR": str(state / "simulator"), "SEQFERRY_START_INTERVAL_S": "0"}
    return env


def build_system(
    root: Path, *, proxy: bool = True, env: dict[str, dict[str, str]] | None = None, moto_log: bool = True
) -> System:
    """Emulator (+ fault proxy), bootstrapped resources, observers and unstarted service processes."""
    moto = start_moto_server(log_path=root / "moto.log" if moto_log else None)
    fault_proxy = start_fault_proxy(moto.url, log_path=root / "proxy.log") if proxy else None
    prefix = "f" + uuid.uuid4().hex[:10]
    for key, value in {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    settings = ServiceSettings(prefix=prefix, environment="test", aws_endpoint_url=moto.url)
    result = bootstrap(settings)
    nas = root / "nas"
    state = root / "state"
    nas.mkdir()
    state.mkdir()
    webhook = WebhookReceiver()
    endpoint = fault_proxy.url if fault_proxy is not None else moto.url
    services = {}
    for name in MODULES:
        port = free_port()
        service_vars = service_env(
            name, endpoint=endpoint, prefix=prefix, nas=nas, state=state, port=port, webhook=webhook.url
        )
        service_vars |= (env or {}).get(name, {})
        services[name] = ServiceProcess(name, service_vars, port, root / f"{name}.log")
    return System(
        root=root,
        moto=moto,
        proxy=fault_proxy,
        prefix=prefix,
        settings=settings,
        services=services,
        nas=nas,
        bus=BusTap(prefix, name=f"{prefix}-observer"),
        sns=SnsTap(str(result["topic"]), f"{prefix}-sns-observer"),
        webhook=webhook,
    )


def running(system: System) -> Iterator[System]:
    try:
        yield system
    finally:
        system.close()
