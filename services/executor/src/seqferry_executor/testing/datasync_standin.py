"""An in-process DataSync endpoint for what moto's DataSync lacks: NFS locations, queueing, counters, failures.

It speaks DataSync's real wire protocol (JSON 1.1, ``X-Amz-Target: FmrsService.<Operation>``) on a loopback
port, so the executor's aiobotocore client serialises requests and parses responses exactly as it would
against AWS. Every request is checked against botocore's DataSync service model (types, required members, enum
values, string lengths and patterns — including the 102,400-character ``FilterValue`` limit that botocore does
not check client-side) and so is every response before it is sent; a mismatch is recorded in
:attr:`DataSyncStandIn.violations`, which the fixture asserts empty.

Behaviour (DataSync's documented rules, see the README for what each test relies on):

- one running execution per task; starting another while one runs queues it (``QUEUED``) if its filters differ
  and is refused with ``InvalidRequestException`` if they are the same;
- include filters: one ``FilterRule``, ``SIMPLE_PATTERN``, ``*`` only as the last character of a pattern;
- ``DescribeTaskExecution`` reports the status and counters the test set with :meth:`advance`;
- when an execution ends, the oldest queued execution of its task launches;
- :meth:`fail_next` makes the next calls of an operation fail with a given error code (throttling, internal).

State lives in this object, not in the executor, so an executor process can be killed and restarted against it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.model import ListShape, MapShape, OperationNotFoundError, Shape, StructureShape
from botocore.session import get_session
from botocore.validate import ParamValidator

ACCOUNT = "111122223333"
REGION = "us-east-1"
TERMINAL = ("SUCCESS", "ERROR")
RUNNING = ("LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "CANCELLING")
COUNTER_FIELDS = (
    "EstimatedFilesToTransfer",
    "EstimatedBytesToTransfer",
    "FilesTransferred",
    "BytesWritten",
    "BytesTransferred",
    "FilesVerified",
    "FilesSkipped",
    "FilesPrepared",
    "FilesFailed",  # a structure by phase: {"Prepare": n, "Transfer": n, "Verify": n, "Delete": n}
)
# Errors every AWS JSON service may return, besides those the operation's model lists.
COMMON_ERRORS = {"ThrottlingException": 400, "ValidationException": 400}


class StandInError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Execution:
    arn: str
    task_arn: str
    includes: list[dict[str, str]]
    options: dict[str, Any]
    status: str
    start_time: datetime
    counters: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_detail: str | None = None

    @property
    def filter_value(self) -> str:
        return self.includes[0]["Value"] if self.includes else ""


@dataclass
class Task:
    arn: str
    name: str
    source: str
    destination: str
    options: dict[str, Any]


def _hex17(number: int) -> str:
    return f"{number:017x}"


def check_constraints(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    """What botocore's ParamValidator leaves out: max lengths, patterns, enums (checked recursively)."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                check_constraints(member, value[name], f"{path}.{name}", problems)
        return
    if isinstance(shape, ListShape) and isinstance(value, list):
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path}: {len(value)} items, at most {shape.metadata['max']}")
        for index, item in enumerate(value):
            check_constraints(shape.member, item, f"{path}[{index}]", problems)
        return
    if isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            check_constraints(shape.value, item, f"{path}.{key}", problems)
        return
    if shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not one of {shape.enum}")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path}: {len(value)} characters, at most {shape.metadata['max']}")
        if "min" in shape.metadata and len(value) < shape.metadata["min"]:
            problems.append(f"{path}: {len(value)} characters, at least {shape.metadata['min']}")
        pattern = shape.metadata.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern.replace(r"\p{Zs}", " "), re.DOTALL)
            except re.error:
                return
            if not compiled.search(value):
                problems.append(f"{path}: does not match {pattern}")


class DataSyncStandIn:
    def __init__(self) -> None:
        self.model = get_session().get_service_model("datasync")
        self._validator = ParamValidator()
        self._lock = threading.RLock()
        self._counter = 0
        self.locations: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, Task] = {}
        self.executions: dict[str, Execution] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.violations: list[str] = []
        self._failures: dict[str, list[str]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> DataSyncStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target", "")
                status, payload = standin.handle(target, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", f"standin-{time.monotonic_ns()}")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="datasync-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test controls ----------------------------------------------------------------------------------------
    def create_task(self, name: str = "sequencers") -> str:
        """Set up an NFS -> S3 task directly (what a test would otherwise do through the API)."""
        source = self._create_location("nfs://nas.lab.example/sequencers/")
        destination = self._create_location("s3://seqferry-runs/")
        return self._create_task(name, source, destination, {})

    def fail_next(self, operation: str, code: str, times: int = 1) -> None:
        """The next ``times`` calls of ``operation`` fail with ``code`` (ThrottlingException, InternalException...)."""
        with self._lock:
            self._failures.setdefault(operation, []).extend([code] * times)

    def advance(self, arn: str, status: str, **counters: Any) -> None:
        """Move an execution to ``status`` with these counters (DescribeTaskExecution names, e.g. FilesVerified)."""
        with self._lock:
            execution = self.executions[arn]
            unknown = set(counters) - set(COUNTER_FIELDS)
            if unknown:
                raise ValueError(f"unknown counters {unknown}")
            execution.status = status
            execution.counters.update(counters)
            if status in TERMINAL:
                self._launch_next(execution.task_arn)

    def fail(self, arn: str, code: str, detail: str) -> None:
        with self._lock:
            execution = self.executions[arn]
            execution.error_code, execution.error_detail = code, detail
            self.advance(arn, "ERROR")

    def starts(self, task_arn: str | None = None) -> list[dict[str, Any]]:
        """Parameters of every accepted StartTaskExecution (optionally for one task)."""
        with self._lock:
            return [
                params
                for op, params in self.calls
                if op == "StartTaskExecution:ok" and (task_arn is None or params["TaskArn"] == task_arn)
            ]

    def executions_in(self, *statuses: str) -> list[Execution]:
        """Executions currently in one of ``statuses`` (a snapshot, safe while requests arrive)."""
        with self._lock:
            return [e for e in self.executions.values() if e.status in statuses]

    def executions_of(self, task_arn: str) -> list[Execution]:
        with self._lock:
            return [e for e in self.executions.values() if e.task_arn == task_arn]

    def calls_of(self, operation: str) -> Iterator[dict[str, Any]]:
        with self._lock:
            return iter([params for op, params in self.calls if op == operation])

    # -- protocol ---------------------------------------------------------------------------------------------
    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = f"{self.model.metadata['targetPrefix']}."
        if not target.startswith(prefix):
            return 400, {"__type": "UnknownOperationException", "message": f"bad target {target!r}"}
        operation = target[len(prefix) :]
        try:
            op_model = self.model.operation_model(operation)
        except OperationNotFoundError:
            return 400, {"__type": "UnknownOperationException", "message": operation}
        params = json.loads(body or b"{}")
        with self._lock:
            self.calls.append((operation, params))
            problems = self._validate(params, op_model.input_shape, f"{operation} request")
            if problems:
                self.violations.extend(problems)
                return 400, {"__type": "ValidationException", "message": "; ".join(problems)}
            try:
                failure = self._failures.get(operation)
                if failure:
                    code = failure.pop(0)
                    raise StandInError(code, "injected by the test", 500 if code.startswith("Internal") else 400)
                result = getattr(self, f"_op_{_snake(operation)}")(params)
            except StandInError as exc:
                allowed = {e.name for e in op_model.error_shapes} | set(COMMON_ERRORS)
                if exc.code not in allowed:
                    self.violations.append(f"{operation}: error {exc.code} not in the model ({sorted(allowed)})")
                return exc.status, {"__type": exc.code, "message": exc.message}
            if op_model.output_shape is not None:
                self.violations.extend(self._validate(result, op_model.output_shape, f"{operation} response"))
            if operation == "StartTaskExecution":
                self.calls.append(("StartTaskExecution:ok", params))
            return 200, _wire(result)

    def _validate(self, value: dict[str, Any], shape: Shape | None, what: str) -> list[str]:
        if shape is None:
            return []
        report = self._validator.validate(value, shape)
        problems = [f"{what}: {report.generate_report()}"] if report.has_errors() else []
        extra: list[str] = []
        check_constraints(shape, value, what, extra)
        return problems + extra

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    # -- operations -------------------------------------------------------------------------------------------
    def _create_location(self, uri: str) -> str:
        arn = f"arn:aws:datasync:{REGION}:{ACCOUNT}:location/loc-{_hex17(self._next_id())}"
        self.locations[arn] = {"uri": uri}
        return arn

    def _create_task(self, name: str, source: str, destination: str, options: dict[str, Any]) -> str:
        arn = f"arn:aws:datasync:{REGION}:{ACCOUNT}:task/task-{_hex17(self._next_id())}"
        self.tasks[arn] = Task(arn, name, source, destination, options)
        return arn

    def _op_create_location_nfs(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"LocationArn": self._create_location(f"nfs://{p['ServerHostname']}{p['Subdirectory']}")}

    def _op_create_location_s3(self, p: dict[str, Any]) -> dict[str, Any]:
        bucket = p["S3BucketArn"].rsplit(":", 1)[-1]
        return {"LocationArn": self._create_location(f"s3://{bucket}{p.get('Subdirectory', '/')}")}

    def _op_create_task(self, p: dict[str, Any]) -> dict[str, Any]:
        for key in ("SourceLocationArn", "DestinationLocationArn"):
            if p[key] not in self.locations:
                raise StandInError("InvalidRequestException", f"Location {p[key]} not found.")
        source, destination = p["SourceLocationArn"], p["DestinationLocationArn"]
        return {"TaskArn": self._create_task(p.get("Name", ""), source, destination, p.get("Options", {}))}

    def _task(self, arn: str) -> Task:
        task = self.tasks.get(arn)
        if task is None:
            raise StandInError("InvalidRequestException", f"Task {arn} not found.")
        return task

    def _execution(self, arn: str) -> Execution:
        execution = self.executions.get(arn)
        if execution is None:
            raise StandInError("InvalidRequestException", f"Task execution {arn} not found.")
        return execution

    def _op_describe_task(self, p: dict[str, Any]) -> dict[str, Any]:
        task = self._task(p["TaskArn"])
        running = [e for e in self.executions_of(task.arn) if e.status in RUNNING]
        result: dict[str, Any] = {
            "TaskArn": task.arn,
            "Name": task.name,
            "Status": "RUNNING" if running else "AVAILABLE",
            "SourceLocationArn": task.source,
            "DestinationLocationArn": task.destination,
        }
        if running:
            result["CurrentTaskExecutionArn"] = running[0].arn
        return result

    def _op_start_task_execution(self, p: dict[str, Any]) -> dict[str, Any]:
        task = self._task(p["TaskArn"])
        includes = p.get("Includes", [])
        for rule in includes:
            if rule.get("FilterType") != "SIMPLE_PATTERN":
                raise StandInError("InvalidRequestException", "FilterType must be SIMPLE_PATTERN")
            for pattern in rule["Value"].split("|"):
                if "*" in pattern[:-1]:
                    raise StandInError("InvalidRequestException", f"'*' only allowed at the end: {pattern[:100]}")
        value = includes[0]["Value"] if includes else ""
        active = [e for e in self.executions_of(task.arn) if e.status in RUNNING or e.status == "QUEUED"]
        if any(e.filter_value == value for e in active):
            raise StandInError(
                "InvalidRequestException", "An execution with the same filters is already running or queued."
            )
        status = "QUEUED" if active else "LAUNCHING"
        arn = f"{task.arn}/execution/exec-{_hex17(self._next_id())}"
        self.executions[arn] = Execution(
            arn, task.arn, includes, p.get("OverrideOptions", {}), status, datetime.now(UTC)
        )
        return {"TaskExecutionArn": arn}

    def _launch_next(self, task_arn: str) -> None:
        if any(e.status in RUNNING for e in self.executions_of(task_arn)):
            return
        queued = [e for e in self.executions_of(task_arn) if e.status == "QUEUED"]
        if queued:
            queued[0].status = "LAUNCHING"

    def _op_describe_task_execution(self, p: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(p["TaskExecutionArn"])
        result: dict[str, Any] = {
            "TaskExecutionArn": execution.arn,
            "Status": execution.status,
            "Options": execution.options,
            "Includes": execution.includes,
            "Excludes": [],
            "StartTime": execution.start_time,
            **{name: execution.counters[name] for name in COUNTER_FIELDS if name in execution.counters},
        }
        if execution.error_code:
            result["Result"] = {"ErrorCode": execution.error_code, "ErrorDetail": execution.error_detail or ""}
        return result

    def _op_list_task_executions(self, p: dict[str, Any]) -> dict[str, Any]:
        executions = [e for e in self.executions.values() if p.get("TaskArn") in (None, e.task_arn)]
        return {"TaskExecutions": [{"TaskExecutionArn": e.arn, "Status": e.status} for e in executions]}

    def _op_cancel_task_execution(self, p: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(p["TaskExecutionArn"])
        if execution.status in TERMINAL:
            raise StandInError("InvalidRequestException", f"cannot cancel an execution in status {execution.status}")
        execution.error_code, execution.error_detail = "OpNotSupported", "Cancelled by the user"
        self.advance(execution.arn, "ERROR")
        return {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _wire(value: Any) -> Any:
    """JSON protocol encoding: timestamps as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


@contextmanager
def running_standin() -> Iterator[DataSyncStandIn]:
    """A started stand-in, stopped afterwards; fails if any request or response broke botocore's DataSync model."""
    server = DataSyncStandIn().start()
    try:
        yield server
    finally:
        server.stop()
    assert server.violations == [], "requests or responses that do not match botocore's DataSync model"
