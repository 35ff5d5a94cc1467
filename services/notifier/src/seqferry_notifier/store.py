"""Notifier records in the shared state table, updated with optimistic concurrency.

Every record is one item: ``pk``/``sk``, the pydantic document as JSON in ``doc``, a ``version`` for
compare-and-set, and the top-level attributes the listing index (``gsi1``) and filters need. Updates read, apply a
pure function, and write back only if nobody wrote in between; on a conflict they read again and re-apply.

Item keys: executions ``nexec#<execution id>`` / ``execution`` (gsi1pk ``notifier#executions``), runs
``run#<run id>`` / ``run`` (gsi1pk ``notifier#runs``), notices ``run#<run id>`` or ``nexec#<id>`` / ``notice#…``
(gsi1pk ``notifier#notices#pending`` until delivered, then ``notifier#notices``). Listing keys are namespaced
because the table and its index are shared with the other services.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_notifier.domain.notices import Notice
from seqferry_notifier.domain.runs import RunRecord

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

# Listing keys are namespaced: the state table (and its gsi1) is shared with the other services.
EXECUTIONS = "notifier#executions"
RUNS = "notifier#runs"
NOTICES = "notifier#notices"
NOTICES_PENDING = "notifier#notices#pending"
MAX_CAS_ATTEMPTS = 25


class StoreError(RuntimeError):
    """The state table could not be updated (persistent write conflicts)."""


def iso(moment: datetime) -> str:
    """Sortable UTC timestamp used in index sort keys."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


def _bool(value: bool) -> dict[str, bool]:
    return {"BOOL": value}


def _conflict(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    record: T
    version: int


@dataclass(frozen=True, slots=True)
class Filter:
    expression: str
    names: Mapping[str, str]
    values: Mapping[str, Any]


class Records(Generic[T]):
    """Typed, versioned records of one kind."""

    def __init__(
        self,
        ddb: Any,
        table: str,
        model: type[T],
        *,
        key: Callable[[T], tuple[str, str]],
        attributes: Callable[[T], dict[str, Any]],
    ) -> None:
        self._ddb = ddb
        self._table = table
        self._model = model
        self._key = key
        self._attributes = attributes

    @staticmethod
    def _item_key(pk: str, sk: str) -> dict[str, Any]:
        return {"pk": _s(pk), "sk": _s(sk)}

    def _parse(self, item: Mapping[str, Any]) -> Versioned[T]:
        return Versioned(self._model.model_validate_json(item["doc"]["S"]), int(item["version"]["N"]))

    async def load(self, pk: str, sk: str) -> Versioned[T] | None:
        response = await self._ddb.get_item(TableName=self._table, Key=self._item_key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return self._parse(item) if item else None

    async def save(self, record: T, expected_version: int | None) -> bool:
        """Write if the stored version is still ``expected_version`` (None: only if absent). False on conflict."""
        pk, sk = self._key(record)
        version = (expected_version or 0) + 1
        item = {
            **self._item_key(pk, sk),
            "doc": _s(record.model_dump_json()),
            "version": _n(version),
            **self._attributes(record),
        }
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": _n(expected_version)},
            }
        try:
            await self._ddb.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if _conflict(exc):
                return False
            raise
        return True

    async def mutate(self, pk: str, sk: str, change: Callable[[T | None], tuple[T | None, R]]) -> tuple[T | None, R]:
        """Apply ``change`` to the current record and store the result atomically.

        ``change`` returns the new record (None: nothing to write) and a value handed back to the caller; it may run
        more than once, on fresher records, when writers race.
        """
        for attempt in range(MAX_CAS_ATTEMPTS):
            current = await self.load(pk, sk)
            updated, extra = change(current.record if current else None)
            if updated is None:
                return (current.record if current else None), extra
            if await self.save(updated, current.version if current else None):
                return updated, extra
            await asyncio.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
        raise StoreError(f"{pk}/{sk}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes")

    async def query(
        self,
        gsi1pk: str,
        *,
        lower: str | None = None,
        upper: str | None = None,
        limit: int = 100,
        newest_first: bool = True,
        where: Filter | None = None,
    ) -> list[T]:
        condition = "gsi1pk = :pk"
        values: dict[str, Any] = {":pk": _s(gsi1pk)}
        if lower is not None and upper is not None:
            condition += " AND gsi1sk BETWEEN :lower AND :upper"
            values |= {":lower": _s(lower), ":upper": _s(upper)}
        elif lower is not None:
            condition += " AND gsi1sk >= :lower"
            values[":lower"] = _s(lower)
        elif upper is not None:
            condition += " AND gsi1sk <= :upper"
            values[":upper"] = _s(upper)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
        }
        if where is not None:
            kwargs["FilterExpression"] = where.expression
            values |= dict(where.values)
            if where.names:
                kwargs["ExpressionAttributeNames"] = dict(where.names)
        kwargs["ExpressionAttributeValues"] = values
        found: list[T] = []
        while len(found) < limit:
            response = await self._ddb.query(**kwargs, Limit=max(limit - len(found), 25))
            found.extend(self._parse(item).record for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
            kwargs["ExclusiveStartKey"] = start
        return found[:limit]


def execution_pk(execution_id: str) -> str:
    return f"nexec#{execution_id}"


def run_pk(run_id: str) -> str:
    return f"run#{run_id}"


def execution_records(ddb: Any, table: str, retention: timedelta) -> Records[ExecutionRecord]:
    def attributes(record: ExecutionRecord) -> dict[str, Any]:
        described = record.reconcile.last_described_at
        return {
            "gsi1pk": _s(EXECUTIONS),
            "gsi1sk": _s(f"{iso(record.updated_at)}#{record.execution_id}"),
            "terminal": _bool(record.terminal),
            "pollable": _bool(record.pollable),
            "polled_at": _n(described.timestamp() if described else 0.0),
            "expires_at": _n(int((record.updated_at + retention).timestamp())),
        }

    return Records(
        ddb,
        table,
        ExecutionRecord,
        key=lambda r: (execution_pk(r.execution_id), "execution"),
        attributes=attributes,
    )


def run_records(ddb: Any, table: str) -> Records[RunRecord]:
    def attributes(record: RunRecord) -> dict[str, Any]:
        return {
            "gsi1pk": _s(RUNS),
            "gsi1sk": _s(f"{iso(record.last_progress_at)}#{record.run_id}"),
            # settled: delivered whole, or reported incomplete; neither is watched for stalls any more
            "delivered": _bool(record.completion is not None or record.incomplete is not None),
            "stalled": _bool(record.stalled_since is not None),
            "run_status": _s(record.status.value),
        }

    return Records(ddb, table, RunRecord, key=lambda r: (run_pk(r.run_id), "run"), attributes=attributes)


def notice_records(ddb: Any, table: str) -> Records[Notice]:
    def attributes(notice: Notice) -> dict[str, Any]:
        return {
            "gsi1pk": _s(NOTICES if notice.done else NOTICES_PENDING),
            "gsi1sk": _s(f"{iso(notice.created_at)}#{notice.pk}#{notice.sk}"),
            "lease_until": _n(notice.lease_until.timestamp()),
        }

    return Records(ddb, table, Notice, key=lambda n: (n.pk, n.sk), attributes=attributes)
