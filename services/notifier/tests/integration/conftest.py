"""Notifier integration fixtures: the service on a real port against the moto server, a fake run in the bucket,
executor-style events on the bus, and queues that observe what the notifier emits (bus events, SNS messages)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import httpx
import pytest
import uvicorn
from aiohttp import web

from seqferry_notifier.app import create_app
from seqferry_notifier.settings import NotifierSettings
from seqferry_shared.aws import sync_client
from seqferry_shared.events.models import (
    Counters,
    ErrorInfo,
    EventDetail,
    Meta,
    RunSummary,
    TransferExecutionStateChanged,
    TransferState,
    Trigger,
)
from seqferry_shared.testing.motoserver import free_port

T = TypeVar("T")
MISEQ_ROOT = "/sequencers/incoming/miseq"


def runinfo(run_id: str, cycles: tuple[int, ...], lanes: int = 1) -> bytes:
    reads = "".join(
        f'<Read Number="{i}" NumCycles="{c}" IsIndexedRead="{"Y" if i > 1 and c < 20 else "N"}" />'
        for i, c in enumerate(cycles, start=1)
    )
    return (
        '<?xml version="1.0"?>\n<RunInfo Version="2">\n'
        f'  <Run Id="{run_id}" Number="1">\n    <Flowcell>000000000-ABCDE</Flowcell>\n'
        f"    <Reads>{reads}</Reads>\n"
        f'    <FlowcellLayout LaneCount="{lanes}" SurfaceCount="2" SwathCount="1" TileCount="2" />\n'
        "  </Run>\n</RunInfo>\n"
    ).encode()


@dataclass
class FakeRun:
    """A small MiSeq-shaped run folder: RunInfo, per-cycle .bcl/.stats, InterOp, an empty file, RTAComplete."""

    run_id: str
    cycles: tuple[int, ...] = (3, 2)
    files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.files:
            self.files = {
                "RunInfo.xml": runinfo(self.run_id, self.cycles),
                "RunParameters.xml": b"<RunParameters><ExperimentName>x</ExperimentName></RunParameters>\n",
                "InterOp/TileMetricsOut.bin": bytes(range(200)),
                "Data/Intensities/BaseCalls/L001/s_1_1101.filter": b"",
            }
            for cycle in range(1, sum(self.cycles) + 1):
                folder = f"Data/Intensities/BaseCalls/L001/C{cycle}.1/"
                self.files[folder + "s_1_1101.bcl"] = bytes([cycle]) * (100 + cycle)
                self.files[folder + "s_1_1101.stats"] = b"s" * 24
            self.files["RTAComplete.txt"] = b"11/25/2025,09:00:00.000,Illumina RTA 1.18.54\n"

    @property
    def nas_path(self) -> str:
        return f"{MISEQ_ROOT}/{self.run_id}"

    @property
    def prefix(self) -> str:
        return f"{self.nas_path.lstrip('/')}/"

    def summary(self, *, markers: tuple[str, ...] = ("RTAComplete.txt",), **overrides: int) -> RunSummary:
        values: dict[str, Any] = {
            "files_total": len(self.files),
            "bytes_total": sum(len(b) for b in self.files.values()),
            "files_transferred": len(self.files),
            "bytes_transferred": sum(len(b) for b in self.files.values()),
            "files_verified": len(self.files),
        }
        values.update(overrides)
        return RunSummary(
            run_id=self.run_id, nas_path=self.nas_path, s3_prefix=self.prefix, markers=list(markers), **values
        )

    def upload(
        self, s3: Any, bucket: str, *, skip: tuple[str, ...] = (), replace: dict[str, bytes] | None = None
    ) -> None:
        for name, body in self.files.items():
            if name in skip:
                continue
            data = (replace or {}).get(name, body)
            s3.put_object(Bucket=bucket, Key=self.prefix + name, Body=data, ChecksumAlgorithm="CRC32C")


def new_run_id() -> str:
    return f"251125_M00123_{uuid.uuid4().int % 10000:04d}_000000000-{uuid.uuid4().hex[:5].upper()}"


def execution_event(
    execution_id: str,
    state: TransferState,
    runs: list[RunSummary] | None = None,
    *,
    files: int = 0,
    error: ErrorInfo | None = None,
    backend: Literal["datasync", "local"] = "local",
) -> TransferExecutionStateChanged:
    return TransferExecutionStateChanged(
        meta=Meta(correlation_id="window-1"),
        execution_id=execution_id,
        backend=backend,
        task="sequencers",
        state=state,
        trigger=Trigger(kind="window", id="1"),
        includes=[f"{MISEQ_ROOT}/251125*"],
        counters=Counters(files_transferred=files, bytes_transferred=files * 100, files_verified=files),
        runs=runs or [],
        error=error,
        started_at=datetime.now(UTC),
    )


@dataclass
class Stack:
    """This test's resources and clients (boto3, talking to the moto server)."""

    prefix: str
    bus: str
    bucket: str
    table: str
    topic_arn: str
    s3: Any
    sqs: Any
    events: Any
    sns: Any
    datasync: Any
    bus_queue_url: str = ""
    sns_queue_url: str = ""

    def publish(self, detail: EventDetail) -> None:
        response = self.events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus,
                    "Source": detail.SOURCE,
                    "DetailType": detail.DETAIL_TYPE,
                    "Detail": detail.model_dump_json(exclude_none=True),
                }
            ]
        )
        assert response["FailedEntryCount"] == 0, response

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def stack(bootstrapped: dict[str, Any], resource_prefix: str) -> Stack:
    settings = NotifierSettings(prefix=resource_prefix, environment="test")
    names = settings.names
    s = Stack(
        prefix=resource_prefix,
        bus=names.bus,
        bucket=names.bucket,
        table=names.table,
        topic_arn=bootstrapped["topic"],
        s3=sync_client("s3", settings),
        sqs=sync_client("sqs", settings),
        events=sync_client("events", settings),
        sns=sync_client("sns", settings),
        datasync=sync_client("datasync", settings),
    )
    # Observe what the notifier emits: its bus events, and the SNS topic through a subscribed queue.
    s.bus_queue_url = s.sqs.create_queue(QueueName=f"{resource_prefix}-observe-bus")["QueueUrl"]
    bus_arn = s.sqs.get_queue_attributes(QueueUrl=s.bus_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s.events.put_rule(
        Name=f"{resource_prefix}-observe",
        EventBusName=s.bus,
        EventPattern=json.dumps({"source": ["seqferry.notifier"]}),
        State="ENABLED",
    )
    s.events.put_targets(Rule=f"{resource_prefix}-observe", EventBusName=s.bus, Targets=[{"Id": "q", "Arn": bus_arn}])
    s.sns_queue_url = s.sqs.create_queue(QueueName=f"{resource_prefix}-observe-sns")["QueueUrl"]
    sns_arn = s.sqs.get_queue_attributes(QueueUrl=s.sns_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s.sns.subscribe(TopicArn=s.topic_arn, Protocol="sqs", Endpoint=sns_arn)
    return s


@dataclass
class Notifier:
    url: str
    http: httpx.AsyncClient
    settings: NotifierSettings


@pytest.fixture
def notifier_settings(resource_prefix: str) -> Callable[..., NotifierSettings]:
    def make(**overrides: Any) -> NotifierSettings:
        values: dict[str, Any] = {
            "prefix": resource_prefix,
            "environment": "test",
            "sqs_wait_time_s": 1,
            "sequencer_paths": f"{MISEQ_ROOT}=miseq",
            "datasync_poll_interval_s": 0.5,
            "sweep_interval_s": 0.5,
            "listing_min_interval_s": 0,
            "dashboard_cache_s": 0,
            "notice_retry_base_s": 0.5,
        }
        values.update(overrides)
        return NotifierSettings(**values)

    return make


@asynccontextmanager
async def serve_notifier(settings: NotifierSettings) -> AsyncIterator[Notifier]:
    """The real app (lifespan: consumer, poller, sweeper) served by uvicorn on a free port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("notifier exited before it started")
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Notifier(url=f"http://127.0.0.1:{port}", http=http, settings=settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=60)


@pytest.fixture
def start_notifier() -> Callable[[NotifierSettings], Any]:
    return serve_notifier


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or probe}")
        await asyncio.sleep(0.2)


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[Any]]:
    return eventually


@pytest.fixture
def make_run() -> Callable[..., FakeRun]:
    """A new fake MiSeq run with a unique run id."""

    def make(**kwargs: Any) -> FakeRun:
        return FakeRun(new_run_id(), **kwargs)

    return make


@pytest.fixture
def executor_event() -> Callable[..., TransferExecutionStateChanged]:
    return execution_event


@dataclass
class Hook:
    """A tiny local webhook that answers 503 to its first ``failures`` calls."""

    url: str
    failures: int
    calls: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    port = free_port()
    state = Hook(url=f"http://127.0.0.1:{port}/hooks/seqferry", failures=0)

    async def receive(request: web.Request) -> web.Response:
        state.calls.append(await request.json())
        await asyncio.sleep(state.delay_s)
        if len(state.calls) <= state.failures:
            return web.Response(status=503, text="try later")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hooks/seqferry", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield state
    finally:
        await runner.cleanup()
