"""DescribeTaskExecution: the source of truth for DataSync executions."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class ExecutionNotFoundError(LookupError):
    """DataSync does not know this execution (wrong account or region, or long deleted)."""


class DataSyncReader:
    def __init__(self, datasync: Any) -> None:
        self._datasync = datasync

    async def describe(self, execution_arn: str) -> dict[str, Any]:
        try:
            response: dict[str, Any] = await self._datasync.describe_task_execution(TaskExecutionArn=execution_arn)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("InvalidRequestException", "ResourceNotFoundException"):
                raise ExecutionNotFoundError(f"{execution_arn}: {code}") from exc
            raise
        return response
