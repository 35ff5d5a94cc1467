"""The ``datasync`` backend: AWS DataSync task executions, one ``StartTaskExecution`` per part.

DataSync is the source of truth for state and counters (``DescribeTaskExecution``); its EventBridge events are
best effort and carry no counters, so the executor polls. Filters use DataSync's ``SIMPLE_PATTERN`` syntax; the
executor has already split the patterns so the ``|``-joined value fits 102,400 characters.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from seqferry_executor.backends.base import BackendError, ExecutionStatus, TransferBackend
from seqferry_executor.backends.classify import classify_written
from seqferry_shared.aws import ClientFactory
from seqferry_shared.events.models import Counters, ErrorInfo, TransferState
from seqferry_shared.patterns import FILTER_VALUE_LIMIT, join_filter
from seqferry_shared.resources import ADHOC_PREFIX, adhoc_prefixes

if TYPE_CHECKING:
    from seqferry_executor.settings import ExecutorSettings

log = logging.getLogger(__name__)

# The reference's options: copy only new or changed files, verify what was copied, log each transfer.
OVERRIDE_OPTIONS: dict[str, str] = {
    "TransferMode": "CHANGED",
    "VerifyMode": "ONLY_FILES_TRANSFERRED",
    "LogLevel": "TRANSFER",
    "Atime": "BEST_EFFORT",
    "Mtime": "PRESERVE",
}

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)

CLASSIFIED_KEPT = 256

# Statuses outside DataSync's documented set that emulators report; mapped to the nearest documented one.
STATUS_ALIASES: dict[str, TransferState] = {"INITIALIZING": TransferState.LAUNCHING}


def backend_error(exc: ClientError) -> BackendError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return BackendError(code, message, retryable=code in RETRYABLE_CODES or status >= 500)


def parse_state(status: str) -> TransferState:
    try:
        return TransferState(status)
    except ValueError:
        alias = STATUS_ALIASES.get(status)
        if alias is None:
            raise BackendError(
                "UnknownStatus", f"DataSync reported unknown status {status!r}", retryable=True
            ) from None
        return alias


def status_of(response: Mapping[str, Any]) -> ExecutionStatus:
    """DescribeTaskExecution response -> ExecutionStatus (DataSync reports no bytes verified nor per-run data)."""
    state = parse_state(str(response.get("Status", "")))

    def count(name: str) -> int:
        return int(response.get(name) or 0)

    # FilesFailed is broken down by phase (Prepare, Transfer, Verify, Delete).
    failed = response.get("FilesFailed") or {}
    files_failed = sum(int(v or 0) for v in failed.values()) if isinstance(failed, Mapping) else int(failed)

    counters = Counters(
        files_estimated=count("EstimatedFilesToTransfer"),
        bytes_estimated=count("EstimatedBytesToTransfer"),
        files_transferred=count("FilesTransferred"),
        bytes_transferred=count("BytesTransferred"),
        files_verified=count("FilesVerified"),
        files_skipped=count("FilesSkipped"),
        files_failed=files_failed,
    )
    error = None
    result = response.get("Result") or {}
    if state is TransferState.ERROR or result.get("ErrorCode"):
        code = str(result.get("ErrorCode") or "ExecutionFailed")
        detail = str(result.get("ErrorDetail") or result.get("TransferStatus") or "DataSync execution failed")
        error = ErrorInfo(code=code, message=detail)
    return ExecutionStatus(state=state, counters=counters, error=error)


class DataSyncBackend(TransferBackend):
    name: ClassVar[str] = "datasync"

    def __init__(
        self,
        client: Any,
        task_arns: Mapping[str, str],
        *,
        options: Mapping[str, str] = OVERRIDE_OPTIONS,
        s3: Any = None,
        bucket: str | None = None,
        never_archived: tuple[str, ...] = (ADHOC_PREFIX,),
    ) -> None:
        self._client = client
        self._task_arns = dict(task_arns)
        self._options = dict(options)
        # DataSync sets no object tags: the executor tags what each execution wrote (see backends.classify).
        self._s3 = s3
        self._bucket = bucket
        self._never_archived = never_archived
        self._classified: OrderedDict[str, int] = OrderedDict()

    @classmethod
    async def create(cls, *, settings: ExecutorSettings, clients: ClientFactory) -> DataSyncBackend:
        # The client factory points DataSync at SEQFERRY_DATASYNC_ENDPOINT_URL when it is set.
        return cls(
            await clients.get("datasync"),
            settings.datasync_task_arns,
            s3=await clients.get("s3"),
            bucket=settings.names.bucket,
            never_archived=adhoc_prefixes(settings.adhoc_path),
        )

    @property
    def tasks(self) -> frozenset[str]:
        return frozenset(self._task_arns)

    def task_arn(self, task: str) -> str:
        arn = self._task_arns.get(task)
        if arn is None:
            known = ", ".join(sorted(self._task_arns)) or "none"
            raise BackendError("InvalidRequestException", f"no DataSync task configured for {task!r} (known: {known})")
        return arn

    async def start(self, task: str, includes: Sequence[str]) -> str:
        value = join_filter(includes)
        if not includes or len(value) > FILTER_VALUE_LIMIT:
            raise BackendError(
                "InvalidRequestException", f"include filter of {len(value)} characters (1 to {FILTER_VALUE_LIMIT})"
            )
        try:
            response = await self._client.start_task_execution(
                TaskArn=self.task_arn(task),
                OverrideOptions=self._options,
                Includes=[{"FilterType": "SIMPLE_PATTERN", "Value": value}],
            )
        except ClientError as exc:
            raise backend_error(exc) from exc
        except BotoCoreError as exc:
            raise BackendError(type(exc).__name__, str(exc), retryable=True) from exc
        arn = str(response["TaskExecutionArn"])
        log.info("datasync: started %s for task %s (%d include patterns)", arn, task, len(includes))
        return arn

    async def describe(self, execution_id: str) -> ExecutionStatus:
        try:
            response = await self._client.describe_task_execution(TaskExecutionArn=execution_id)
        except ClientError as exc:
            raise backend_error(exc) from exc
        except BotoCoreError as exc:
            raise BackendError(type(exc).__name__, str(exc), retryable=True) from exc
        status = status_of(response)
        if status.state.terminal:
            # An ended execution is reported only once what it wrote carries its lifecycle class.
            await self._classify(execution_id, response)
        return status

    async def _classify(self, execution_id: str, response: Mapping[str, Any]) -> None:
        """Tag what the execution wrote, once (its include patterns and start time are in its description)."""
        if self._s3 is None or self._bucket is None or execution_id in self._classified:
            return
        includes = [p for rule in response.get("Includes") or () for p in str(rule.get("Value", "")).split("|") if p]
        started = response.get("StartTime")
        since = started if isinstance(started, datetime) else datetime.now(UTC) - timedelta(days=1)
        try:
            tagged = await classify_written(
                self._s3, self._bucket, includes, since=since, adhoc_prefixes=self._never_archived
            )
        except ClientError as exc:
            raise BackendError(
                "ClassifyFailed", f"tagging objects of {execution_id} failed: {exc}", retryable=True
            ) from exc
        except BotoCoreError as exc:
            raise BackendError("ClassifyFailed", str(exc), retryable=True) from exc
        self._classified[execution_id] = tagged
        while len(self._classified) > CLASSIFIED_KEPT:
            self._classified.popitem(last=False)

    async def ping(self) -> None:
        """Readiness: DataSync answers and every configured task exists."""
        for arn in self._task_arns.values():
            await self._client.describe_task(TaskArn=arn)
