"""``LocalBackend``: seqferry's own engine behind the same interface as DataSync task executions.

Executions of one task run one at a time (later ones wait in QUEUED, as DataSync queues them); executions of
different tasks may overlap, and a key being uploaded by one is left pending by the other. Executions live in
memory: after a restart the executor calls ``resume`` and the pass runs again under the same id, which the
change index makes cheap.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from seqferry_executor.backends.base import BackendError, ExecutionStatus, TransferBackend
from seqferry_executor.backends.local.config import LocalBackendConfig
from seqferry_executor.backends.local.engine import Engine, Execution
from seqferry_executor.backends.local.index import ChangeIndex, ChangeIndexError
from seqferry_executor.backends.local.scan import Scanner
from seqferry_executor.backends.local.source import check_platform
from seqferry_executor.backends.local.transferlog import TransferLog
from seqferry_executor.backends.local.uploader import CrtUploader, Endpoint
from seqferry_shared.events.models import Counters, ErrorInfo, TransferState
from seqferry_shared.patterns import PatternError, validate_pattern
from seqferry_shared.resources import adhoc_prefixes
from seqferry_shared.sequencers import SequencerPath

log = logging.getLogger(__name__)


class _Names(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def transfer_log_group(self) -> str: ...


class LocalSettings(Protocol):
    """What the backend reads from the executor's settings."""

    @property
    def nas_root(self) -> Path: ...
    @property
    def names(self) -> _Names: ...
    @property
    def sequencers(self) -> list[SequencerPath]: ...
    def endpoint_url_for(self, service: str) -> str | None: ...
    @property
    def aws_region(self) -> str: ...
    @property
    def adhoc_path(self) -> str: ...
    @property
    def request_roots(self) -> list[str]: ...
    @property
    def roots(self) -> list[str]: ...
    @property
    def local(self) -> LocalBackendConfig: ...


def _resolve_credentials() -> tuple[Any, bool]:
    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise BackendError("InvalidRequestException", "no AWS credentials found for the local backend")
    refreshable = hasattr(credentials, "refresh_needed")
    return credentials, not refreshable


class LocalBackend(TransferBackend):
    name: ClassVar[str] = "local"

    def __init__(
        self, *, engine: Engine, uploader: CrtUploader, index: ChangeIndex, config: LocalBackendConfig
    ) -> None:
        self._engine = engine
        self._uploader = uploader
        self._index = index
        self._config = config
        self._executions: OrderedDict[str, Execution] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._task_locks: dict[str, asyncio.Lock] = {}
        self._ready: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self._rebuild = False
        self._prefixes: list[str] = []

    @classmethod
    async def create(cls, *, settings: LocalSettings, clients: Any) -> LocalBackend:
        config = settings.local
        bucket = settings.names.bucket
        try:
            check_platform()
        except OSError as exc:
            raise BackendError("InvalidRequestException", str(exc)) from exc
        s3_endpoint = settings.endpoint_url_for("s3")
        endpoint = Endpoint.of(s3_endpoint, settings.aws_region, bucket)
        destination = f"{s3_endpoint or 'aws'}|{settings.aws_region}|{bucket}"
        try:
            index = await asyncio.to_thread(ChangeIndex.open, config.index_path, destination)
        except ChangeIndexError as exc:
            raise BackendError("InvalidRequestException", str(exc)) from exc
        credentials, static = await asyncio.to_thread(_resolve_credentials)

        def frozen() -> tuple[str, str, str | None]:
            current = credentials.get_frozen_credentials()
            return current.access_key, current.secret_key, current.token

        uploader = CrtUploader(
            endpoint=endpoint,
            region=settings.aws_region,
            credentials=frozen,
            static_credentials=static,
            config=config,
        )
        s3 = await clients.get("s3")
        sequencers = settings.sequencers
        logs = await clients.get("logs") if config.transfer_log == "cloudwatch" else None
        engine = Engine(
            config=config,
            scanner=Scanner(settings.nas_root, follow_symlinks=config.follow_symlinks, allowed_roots=settings.roots),
            index=index,
            uploader=uploader,
            s3=s3,
            bucket=bucket,
            sequencers=sequencers,
            adhoc_prefixes=adhoc_prefixes(settings.adhoc_path),
            transfer_log=TransferLog(logs, settings.names.transfer_log_group),
        )
        backend = cls(engine=engine, uploader=uploader, index=index, config=config)
        rebuild = config.rebuild_index == "always" or (config.rebuild_index == "if-missing" and index.rebuild_needed)
        adhoc = settings.adhoc_path.strip("/")
        prefixes = [root.strip("/") + "/" for root in settings.request_roots] + [f"{adhoc}/" if adhoc else ""]
        backend._rebuild = rebuild
        backend._prefixes = prefixes
        backend._ensure_ready()
        return backend

    def _ensure_ready(self) -> asyncio.Task[None]:
        """Start-up work every pass waits for; retried by the next pass if it failed."""
        if self._ready is None or (self._ready.done() and (self._ready.cancelled() or self._ready.exception())):
            self._ready = asyncio.create_task(self._prepare(), name="local-backend-prepare")
        return self._ready

    async def _prepare(self) -> None:
        if self._rebuild:
            await self._engine.rebuild_index(self._prefixes)
            self._rebuild = False
        await self._engine.abort_stranded_uploads()
        await self._engine.reconcile_intents()

    async def start(self, task: str, includes: Sequence[str]) -> str:
        execution_id = "exec-" + secrets.token_hex(9)[:17]
        self._launch(Execution(id=execution_id, task=task, includes=self._validated(includes)))
        return execution_id

    async def resume(self, execution_id: str, task: str, includes: Sequence[str]) -> None:
        running = self._tasks.get(execution_id)
        if running is not None and not running.done():
            return
        self._launch(Execution(id=execution_id, task=task, includes=self._validated(includes)))

    async def describe(self, execution_id: str) -> ExecutionStatus:
        execution = self._executions.get(execution_id)
        if execution is None:
            raise BackendError("InvalidRequestException", f"unknown execution {execution_id}")
        return ExecutionStatus(
            state=execution.state,
            counters=Counters.model_validate(execution.counters.model_dump()),
            runs=execution.runs(),
            error=execution.error.model_copy() if execution.error else None,
            problems=[problem.model_copy() for problem in execution.problems],
        )

    async def changed(self, timeout_s: float) -> None:
        """Return as soon as a pass ends (or after ``timeout_s``): the next queued part need not wait for a poll.
        The poller's ``wake`` (``seqferry_shared.periodic``)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._ended.wait()
        except TimeoutError:
            return
        self._ended.clear()

    async def close(self) -> None:
        pending = [t for t in (*self._tasks.values(), self._ready) if t is not None and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._uploader.close()
        self._index.close()

    # -- internals -------------------------------------------------------------------------------------------

    @staticmethod
    def _validated(includes: Sequence[str]) -> tuple[str, ...]:
        if not includes:
            raise BackendError("InvalidRequestException", "at least one include pattern is required")
        try:
            return tuple(validate_pattern(pattern) for pattern in includes)
        except PatternError as exc:
            raise BackendError("InvalidRequestException", str(exc)) from exc

    def _launch(self, execution: Execution) -> None:
        self._executions[execution.id] = execution
        self._executions.move_to_end(execution.id)
        self._tasks[execution.id] = asyncio.create_task(self._run(execution), name=f"local-pass-{execution.id}")
        self._prune()

    async def _run(self, execution: Execution) -> None:
        lock = self._task_locks.setdefault(execution.task, asyncio.Lock())
        try:
            async with lock:
                execution.state = TransferState.LAUNCHING
                await asyncio.shield(self._ensure_ready())
                await self._engine.run(execution)
        except (BackendError, OSError, ChangeIndexError, ClientError, BotoCoreError) as exc:
            log.exception("local pass %s could not start", execution.id)
            execution.state = TransferState.ERROR
            execution.error = execution.error or _error("InternalException", exc)
        finally:
            self._tasks.pop(execution.id, None)
            self._ended.set()

    def _prune(self) -> None:
        excess = len(self._executions) - self._config.executions_kept
        for execution_id in list(self._executions):
            if excess <= 0:
                break
            if self._executions[execution_id].state.terminal:
                del self._executions[execution_id]
                excess -= 1


def _error(code: str, exc: BaseException) -> ErrorInfo:
    return ErrorInfo(code=code, message=f"{type(exc).__name__}: {exc}"[:1000])
