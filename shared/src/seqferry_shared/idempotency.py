"""Persistent idempotency on DynamoDB conditional writes.

A small state machine per key: claim (INPROGRESS, with an expiry so a crashed worker's claim lapses) →
COMPLETED (kept until ``expires_at``, DynamoDB TTL) or released (deleted) when the handler fails, so the
redelivery can run it again. Keys are our own event ids, never SQS message ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from seqferry_shared.errors import RetryLaterError
from seqferry_shared.state.kinds import IDEMPOTENCY_CLAIM, PK, TTL

IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
RESULT = IDEMPOTENCY_CLAIM.document


class IdempotencyInProgressError(RetryLaterError):
    """Another worker holds the claim on this key; retry after its expiry."""


@dataclass(slots=True)
class Claim:
    key: str
    done: bool
    result: Any = None
    stored: Any = None

    def set_result(self, result: Any) -> None:
        """Remember a JSON-serialisable result to hand to later duplicates."""
        self.stored = result


class IdempotencyStore:
    def __init__(
        self,
        ddb_client: Any,
        table: str,
        *,
        in_progress_expiry_s: float = 120.0,
        record_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self._ddb = ddb_client
        self._table = table
        self._in_progress_expiry_s = in_progress_expiry_s
        self._record_ttl_s = record_ttl_s

    @staticmethod
    def _item_key(key: str) -> dict[str, Any]:
        return IDEMPOTENCY_CLAIM.key(key).item()

    async def claim(self, key: str) -> Claim:
        now = time.time()
        item = {
            **self._item_key(key),
            "status": {"S": IN_PROGRESS},
            "in_progress_until": {"N": f"{now + self._in_progress_expiry_s:.3f}"},
            TTL: {"N": str(int(now) + self._record_ttl_s)},
        }
        try:
            await self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=(
                    f"attribute_not_exists({PK}) OR {TTL} < :now_s "
                    "OR (#status = :in_progress AND in_progress_until < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": {"N": f"{now:.3f}"},
                    ":now_s": {"N": str(int(now))},
                    ":in_progress": {"S": IN_PROGRESS},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Claim(key=key, done=False)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            existing = exc.response.get("Item") or await self._get(key)
        if existing and existing.get("status", {}).get("S") == COMPLETED:
            raw = existing.get(RESULT, {}).get("S")
            return Claim(key=key, done=True, result=json.loads(raw) if raw else None)
        raise IdempotencyInProgressError(f"idempotency key {key!r} is being processed elsewhere")

    async def _get(self, key: str) -> dict[str, Any] | None:
        response = await self._ddb.get_item(TableName=self._table, Key=self._item_key(key), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def complete(self, key: str, result: Any = None) -> None:
        values: dict[str, Any] = {":completed": {"S": COMPLETED}}
        update = "SET #status = :completed REMOVE in_progress_until"
        if result is not None:
            values[":result"] = {"S": json.dumps(result, default=str)}
            update = "SET #status = :completed, #result = :result REMOVE in_progress_until"
        await self._ddb.update_item(
            TableName=self._table,
            Key=self._item_key(key),
            UpdateExpression=update,
            ExpressionAttributeNames={
                "#status": "status",
                **({"#result": RESULT} if result is not None else {}),
            },
            ExpressionAttributeValues=values,
        )

    async def release(self, key: str) -> None:
        await self._ddb.delete_item(TableName=self._table, Key=self._item_key(key))

    @asynccontextmanager
    async def guard(self, key: str) -> AsyncIterator[Claim]:
        """Run the body once per key: yields ``claim.done`` True for duplicates; releases on failure."""
        claim = await self.claim(key)
        if claim.done:
            yield claim
            return
        try:
            yield claim
        except BaseException:
            await self.release(key)
            raise
        await self.complete(key, claim.stored)
