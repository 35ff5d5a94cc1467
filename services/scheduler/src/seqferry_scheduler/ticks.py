"""Tick claims in the state table: one conditional write decides which replica opens a tick's window."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from seqferry_shared.state.kinds import PK, SCHEDULER_TICK, TTL
from seqferry_shared.state.records import conflict

log = logging.getLogger(__name__)


def tick_key(task: str, tick: int | str) -> dict[str, Any]:
    return SCHEDULER_TICK.key(task, str(tick)).item()


class TickClaims:
    """``SCHEDULER_TICK`` items (``tick#<task>#<tick>``): claimed by exactly one replica, then marked published."""

    def __init__(self, ddb: Any, table: str, *, owner: str, ttl: timedelta) -> None:
        self._ddb = ddb
        self._table = table
        self.owner = owner
        self._ttl_s = int(ttl.total_seconds())

    async def claim(
        self,
        task: str,
        tick: int | str,
        *,
        event_id: str,
        window_end: datetime,
        abandoned_after: timedelta | None = None,
    ) -> bool:
        """True if this replica won the tick; False if another replica (or an earlier run) holds it.

        With ``abandoned_after``, a claim still unpublished that long after it was made is taken over (the replica
        that made it died between claiming and publishing); a published tick is never claimed again.
        """
        now = time.time()
        item = {
            **tick_key(task, tick),
            "status": {"S": "claimed"},
            "owner": {"S": self.owner},
            "event_id": {"S": event_id},
            "window_end": {"S": window_end.isoformat()},
            "claimed_at": {"N": f"{now:.3f}"},
            TTL: {"N": str(int(now) + self._ttl_s)},
        }
        condition: dict[str, Any] = {"ConditionExpression": f"attribute_not_exists({PK})"}
        if abandoned_after is not None:
            condition = {
                "ConditionExpression": f"attribute_not_exists({PK}) OR (#status = :claimed AND claimed_at < :before)",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":claimed": {"S": "claimed"},
                    ":before": {"N": f"{now - abandoned_after.total_seconds():.3f}"},
                },
            }
        try:
            await self._ddb.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if conflict(exc):
                return False
            raise
        return True

    async def mark_published(self, task: str, tick: int | str) -> None:
        await self._ddb.update_item(
            TableName=self._table,
            Key=tick_key(task, tick),
            UpdateExpression="SET #status = :published, published_at = :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":published": {"S": "published"}, ":now": {"N": f"{time.time():.3f}"}},
        )

    async def release(self, task: str, tick: int | str) -> None:
        """Give a tick back after a failed publish, so a retry (here or on another replica) can open it."""
        try:
            await self._ddb.delete_item(
                TableName=self._table,
                Key=tick_key(task, tick),
                ConditionExpression="#owner = :me AND #status = :claimed",
                ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                ExpressionAttributeValues={":me": {"S": self.owner}, ":claimed": {"S": "claimed"}},
            )
        except ClientError as exc:
            if not conflict(exc):
                raise
            log.warning("tick %s of task %s was not ours to release", tick, task)

    async def status(self, task: str, tick: int | str) -> dict[str, str] | None:
        response = await self._ddb.get_item(TableName=self._table, Key=tick_key(task, tick), ConsistentRead=True)
        item = response.get("Item")
        if not item:
            return None
        return {name: next(iter(value.values())) for name, value in item.items()}
