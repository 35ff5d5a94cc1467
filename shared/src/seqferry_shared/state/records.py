"""Typed records of one kind in the state table: get/put, compare-and-set, query by listing key.

Every record is one item: its key, the pydantic document as JSON in the kind's payload attribute, ``version`` for
versioned kinds, and the top-level attributes its listing (``gsi1pk`` / ``gsi1sk``), filters and TTL need, which the
service computes from the record. Versioned kinds change by :meth:`Records.mutate`: read, apply a pure function,
write back only if nobody wrote in between; on a conflict read again and re-apply.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from seqferry_shared.errors import RetryLaterError
from seqferry_shared.state.kinds import LISTING_INDEX, LISTING_PK, LISTING_SK, PK, VERSION, Key, RecordKind

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

MAX_CAS_ATTEMPTS = 25


class StoreConflictError(RetryLaterError):
    """A record kept changing under every attempt to update it (persistent write conflicts)."""


def conflict(exc: ClientError) -> bool:
    """True if a conditional write failed its condition (someone else wrote first)."""
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    record: T
    version: int


@dataclass(frozen=True, slots=True)
class Filter:
    """A FilterExpression applied to a listing's items (on their top-level attributes)."""

    expression: str
    names: Mapping[str, str]
    values: Mapping[str, Any]


class Records(Generic[T]):
    """Records of one :class:`RecordKind`, as ``model`` instances."""

    def __init__(
        self,
        ddb: Any,
        table: str,
        kind: RecordKind,
        model: type[T],
        *,
        key: Callable[[T], Key],
        attributes: Callable[[T], dict[str, Any]] = lambda _: {},
    ) -> None:
        self._ddb = ddb
        self._table = table
        self.kind = kind
        self._payload = kind.document
        self._model = model
        self._key = key
        self._attributes = attributes

    def _parse(self, item: Mapping[str, Any]) -> Versioned[T]:
        version = int(item[VERSION]["N"]) if VERSION in item else 0
        return Versioned(self._model.model_validate_json(item[self._payload]["S"]), version)

    def _item(self, record: T) -> dict[str, Any]:
        attributes = self._attributes(record)
        listing = attributes.get(LISTING_PK, {}).get("S")
        if listing is not None and listing not in self.kind.listings:
            raise ValueError(f"{self.kind.name} records are not listed under {listing!r}")
        return {**self._key(record).item(), self._payload: _s(record.model_dump_json()), **attributes}

    async def load(self, key: Key) -> Versioned[T] | None:
        response = await self._ddb.get_item(TableName=self._table, Key=key.item(), ConsistentRead=True)
        item = response.get("Item")
        return self._parse(item) if item else None

    async def get(self, key: Key) -> T | None:
        found = await self.load(key)
        return found.record if found else None

    async def put(self, record: T) -> None:
        """Write ``record`` whatever is stored (kinds with one writer per record; versioned kinds use save)."""
        if self.kind.versioned:
            raise TypeError(f"{self.kind.name} records are versioned: use save() or mutate()")
        await self._ddb.put_item(TableName=self._table, Item=self._item(record))

    async def save(self, record: T, expected_version: int | None) -> bool:
        """Write if the stored version is still ``expected_version`` (None: only if absent). False on conflict."""
        if not self.kind.versioned:
            raise TypeError(f"{self.kind.name} records are not versioned: use put()")
        item = {**self._item(record), VERSION: _n((expected_version or 0) + 1)}
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": f"attribute_not_exists({PK})"}
        else:
            condition = {
                "ConditionExpression": f"{VERSION} = :expected",
                "ExpressionAttributeValues": {":expected": _n(expected_version)},
            }
        try:
            await self._ddb.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if conflict(exc):
                return False
            raise
        return True

    async def mutate(self, key: Key, change: Callable[[T | None], tuple[T | None, R]]) -> tuple[T | None, R]:
        """Apply ``change`` to the current record and store the result atomically.

        ``change`` returns the new record (None: nothing to write) and a value handed back to the caller; it may run
        more than once, on fresher records, when writers race.
        """
        for attempt in range(MAX_CAS_ATTEMPTS):
            current = await self.load(key)
            updated, extra = change(current.record if current else None)
            if updated is None:
                return (current.record if current else None), extra
            if await self.save(updated, current.version if current else None):
                return updated, extra
            await asyncio.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
        raise StoreConflictError(f"{key.pk}/{key.sk}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes")

    async def query(
        self,
        listing: str,
        *,
        lower: str | None = None,
        upper: str | None = None,
        limit: int = 100,
        newest_first: bool = True,
        where: Filter | None = None,
    ) -> list[T]:
        """Records listed under ``listing``, in ``gsi1sk`` order, optionally between ``lower`` and ``upper``."""
        if listing not in self.kind.listings:
            raise ValueError(f"{self.kind.name} records are not listed under {listing!r}")
        condition = f"{LISTING_PK} = :pk"
        values: dict[str, Any] = {":pk": _s(str(listing))}
        if lower is not None and upper is not None:
            condition += f" AND {LISTING_SK} BETWEEN :lower AND :upper"
            values |= {":lower": _s(lower), ":upper": _s(upper)}
        elif lower is not None:
            condition += f" AND {LISTING_SK} >= :lower"
            values[":lower"] = _s(lower)
        elif upper is not None:
            condition += f" AND {LISTING_SK} <= :upper"
            values[":upper"] = _s(upper)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LISTING_INDEX,
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
