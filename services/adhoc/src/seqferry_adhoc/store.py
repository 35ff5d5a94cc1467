"""Request records in the state table: ``pk = adhoc#req#<id>``, listed under ``gsi1pk = adhoc-requests``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from seqferry_adhoc.domain.records import TransferRecord

SORT_KEY = "request"
LISTING = "adhoc-requests"


def record_pk(request_id: str) -> str:
    return f"adhoc#req#{request_id}"


class RequestStore:
    def __init__(self, ddb_client: Any, table: str, *, ttl: timedelta = timedelta(days=90)) -> None:
        self._ddb = ddb_client
        self._table = table
        self._ttl_s = int(ttl.total_seconds())

    async def put(self, record: TransferRecord) -> None:
        """Write (or overwrite) a record; ids are unique per request, so an overwrite is the same request."""
        await self._ddb.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": record_pk(record.id)},
                "sk": {"S": SORT_KEY},
                "gsi1pk": {"S": LISTING},
                "gsi1sk": {"S": f"{record.created_at.isoformat()}#{record.id}"},
                "status": {"S": record.status},
                "record": {"S": record.model_dump_json()},
                "expires_at": {"N": str(int(time.time()) + self._ttl_s)},
            },
        )

    async def get(self, request_id: str) -> TransferRecord | None:
        response = await self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": record_pk(request_id)}, "sk": {"S": SORT_KEY}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        return TransferRecord.model_validate_json(item["record"]["S"])

    async def ping(self) -> None:
        await self._ddb.describe_table(TableName=self._table)
