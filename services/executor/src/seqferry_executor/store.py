"""The executor's persistence in the state table (record kinds from :mod:`seqferry_shared.state.kinds`).

Items (``pk`` / ``sk``):

- ``EXECUTOR_QUEUE`` ``task#<name>`` / ``state`` — the task's queue head: version, next arrival number, the active
  part (listed under ``executor#tasks``, so polling resumes after a restart);
- ``EXECUTOR_QUEUE_ITEM`` ``task#<name>`` / ``q#<arrival>`` — one pending work item each, in arrival order (include
  lists can be large, so they do not share one item);
- ``EXECUTOR_EXECUTION`` ``exec#<execution id>`` / ``exec`` — an execution record (listed under
  ``executor#executions``, newest first);
- ``EXECUTOR_REQUEST`` ``req#<request id>`` / ``req`` — a ``Transfer Requested``: accepted or rejected with its
  reasons, and the executions it caused (listed under ``executor#requests``); rejected windows are recorded as
  ``req#window#<task>#<tick>``.

Queue changes are one transaction guarded by the version of the ``state`` item: a writer that read an older
version gets :class:`VersionConflictError` and decides again on fresh state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from seqferry_executor.domain.executions import ExecutionRecord
from seqferry_executor.domain.queue import Active, TaskQueue, WorkItem, WorkKind
from seqferry_shared.errors import RetryLaterError
from seqferry_shared.state.kinds import (
    EXECUTOR_EXECUTION,
    EXECUTOR_QUEUE,
    EXECUTOR_QUEUE_ITEM,
    EXECUTOR_REQUEST,
    LISTING_INDEX,
    LISTING_PK,
    LISTING_SK,
    PK,
    SK,
    TTL,
    VERSION,
    Key,
    Listing,
)
from seqferry_shared.state.records import Records, conflict

_deserializer = TypeDeserializer()
_ITEM_DATA = EXECUTOR_QUEUE_ITEM.document


class VersionConflictError(RetryLaterError):
    """Someone else changed the task's queue since it was read."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def queue_key(task: str) -> Key:
    return EXECUTOR_QUEUE.key(task)


def item_key(task: str, seq: int) -> Key:
    return EXECUTOR_QUEUE_ITEM.child(queue_key(task), f"{seq:012d}")


def request_key(request_id: str) -> Key:
    return EXECUTOR_REQUEST.key(request_id)


def _item_json(item: WorkItem) -> str:
    data = asdict(item)
    data["kind"] = item.kind.value
    data["arrived_at"] = item.arrived_at.isoformat()
    return json.dumps(data)


def _item_from_json(raw: str) -> WorkItem:
    data = json.loads(raw)
    return WorkItem(
        seq=int(data["seq"]),
        kind=WorkKind(data["kind"]),
        ref=str(data["ref"]),
        includes=tuple(data["includes"]),
        correlation_id=str(data["correlation_id"]),
        arrived_at=datetime.fromisoformat(data["arrived_at"]),
        folded=tuple(data.get("folded", ())),
        trace=tuple((str(k), str(v)) for k, v in data.get("trace", ())),
    )


def _active_json(active: Active) -> str:
    data = asdict(active)
    data["lease_until"] = active.lease_until.isoformat() if active.lease_until else None
    return json.dumps(data)


def _active_from_json(raw: str) -> Active:
    data = json.loads(raw)
    lease_until = data.get("lease_until")
    return Active(
        seq=int(data["seq"]),
        part=int(data["part"]),
        parts=int(data["parts"]),
        execution_id=data.get("execution_id"),
        lease_owner=data.get("lease_owner"),
        lease_until=datetime.fromisoformat(lease_until) if lease_until else None,
    )


RequestClaim = Literal["new", "retry", "duplicate"]


class StateStore:
    def __init__(self, ddb: Any, table: str, *, record_ttl: timedelta) -> None:
        self._ddb = ddb
        self._table = table
        self._record_ttl_s = int(record_ttl.total_seconds())
        self._executions = Records(
            ddb,
            table,
            EXECUTOR_EXECUTION,
            ExecutionRecord,
            key=lambda r: EXECUTOR_EXECUTION.key(r.execution_id),
            attributes=self._execution_attributes,
        )

    def _expires_at(self) -> dict[str, str]:
        return {"N": str(int(time.time()) + self._record_ttl_s)}

    def _execution_attributes(self, record: ExecutionRecord) -> dict[str, Any]:
        return {
            "state": _s(record.state.value if record.state else "STARTING"),
            "task": _s(record.task),
            LISTING_PK: _s(Listing.EXECUTOR_EXECUTIONS.value),
            LISTING_SK: _s(f"{record.started_at.isoformat()}#{record.execution_id}"),
            TTL: self._expires_at(),
        }

    async def ping(self) -> None:
        await self._ddb.describe_table(TableName=self._table)

    # -- task queues ------------------------------------------------------------------------------------------
    async def load_queue(self, task: str) -> TaskQueue:
        state: dict[str, Any] | None = None
        items: list[WorkItem] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PK} = :pk",
            "ExpressionAttributeValues": {":pk": _s(queue_key(task).pk)},
            "ConsistentRead": True,
        }
        while True:
            response = await self._ddb.query(**kwargs)
            for raw in response.get("Items", []):
                sk = raw[SK]["S"]
                if sk == EXECUTOR_QUEUE.sk:
                    state = _plain(raw)
                elif sk.startswith(EXECUTOR_QUEUE_ITEM.sk):
                    items.append(_item_from_json(raw[_ITEM_DATA]["S"]))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if state is None:
            return TaskQueue(task=task, items=tuple(sorted(items, key=lambda i: i.seq)))
        return TaskQueue(
            task=task,
            version=int(state[VERSION]),
            next_seq=int(state["next_seq"]),
            active=_active_from_json(state["active"]) if state.get("active") else None,
            items=tuple(sorted(items, key=lambda i: i.seq)),
        )

    async def save_queue(self, old: TaskQueue, new: TaskQueue) -> TaskQueue:
        """Persist ``new`` if the stored queue is still at ``old.version``; returns it with the next version."""
        saved = TaskQueue(
            task=new.task, version=old.version + 1, next_seq=new.next_seq, active=new.active, items=new.items
        )
        state_item: dict[str, Any] = {
            **queue_key(new.task).item(),
            VERSION: {"N": str(saved.version)},
            "next_seq": {"N": str(saved.next_seq)},
            "pending": {"N": str(len(saved.pending))},
            LISTING_PK: _s(Listing.EXECUTOR_TASKS.value),
            LISTING_SK: _s(new.task),
        }
        if saved.active is not None:
            state_item["active"] = _s(_active_json(saved.active))
        put_state: dict[str, Any] = {"TableName": self._table, "Item": state_item}
        if old.version == 0:
            put_state["ConditionExpression"] = f"attribute_not_exists({PK})"
        else:
            put_state["ConditionExpression"] = f"{VERSION} = :v"
            put_state["ExpressionAttributeValues"] = {":v": {"N": str(old.version)}}
        actions: list[dict[str, Any]] = [{"Put": put_state}]
        before = {i.seq: i for i in old.items}
        after = {i.seq: i for i in new.items}
        for seq, item in after.items():
            if before.get(seq) != item:
                entry = {**item_key(new.task, seq).item(), _ITEM_DATA: _s(_item_json(item))}
                actions.append({"Put": {"TableName": self._table, "Item": entry}})
        for seq in before.keys() - after.keys():
            actions.append({"Delete": {"TableName": self._table, "Key": item_key(new.task, seq).item()}})
        try:
            await self._ddb.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
                raise VersionConflictError(f"task {new.task}: queue changed since version {old.version}") from exc
            raise
        return saved

    async def list_tasks(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LISTING_INDEX,
            "KeyConditionExpression": f"{LISTING_PK} = :tasks",
            "ExpressionAttributeValues": {":tasks": _s(Listing.EXECUTOR_TASKS.value)},
            "ProjectionExpression": LISTING_SK,
        }
        while True:
            response = await self._ddb.query(**kwargs)
            names.extend(raw[LISTING_SK]["S"] for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return names
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- executions -------------------------------------------------------------------------------------------
    async def put_execution(self, record: ExecutionRecord) -> None:
        await self._executions.put(record)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        return await self._executions.get(EXECUTOR_EXECUTION.key(execution_id))

    async def recent_executions(self, limit: int) -> list[ExecutionRecord]:
        return await self._executions.query(Listing.EXECUTOR_EXECUTIONS, limit=limit)

    # -- requests ---------------------------------------------------------------------------------------------
    async def claim_request(
        self,
        request_id: str,
        *,
        event_id: str,
        status: Literal["queued", "rejected"],
        task: str,
        reasons: Sequence[str],
        includes: int,
        correlation_id: str,
        requested_by: str,
        now: datetime,
        kind: WorkKind = WorkKind.REQUEST,
    ) -> RequestClaim:
        """Record a request once: ``new``; the same event again (a retry): ``retry``; another event: ``duplicate``."""
        item: dict[str, Any] = {
            **request_key(request_id).item(),
            "kind": _s(kind.value),
            "request_id": _s(request_id),
            "event_id": _s(event_id),
            "status": _s(status),
            "task": _s(task),
            "includes": {"N": str(includes)},
            "correlation_id": _s(correlation_id),
            "requested_by": _s(requested_by),
            "received_at": _s(now.isoformat()),
            "executions": {"L": []},
            LISTING_PK: _s(Listing.EXECUTOR_REQUESTS.value),
            LISTING_SK: _s(f"{now.isoformat()}#{request_id}"),
            TTL: self._expires_at(),
        }
        if reasons:
            item["reasons"] = {"L": [_s(r) for r in reasons]}
        try:
            await self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=f"attribute_not_exists({PK})",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not conflict(exc):
                raise
            existing = exc.response.get("Item") or await self._get_request_raw(request_id) or {}
            same = existing.get("event_id", {}).get("S") == event_id
            return "retry" if same else "duplicate"
        return "new"

    async def add_request_execution(self, request_id: str, execution_id: str) -> None:
        await self._ddb.update_item(
            TableName=self._table,
            Key=request_key(request_id).item(),
            UpdateExpression="SET executions = list_append(if_not_exists(executions, :empty), :e), #s = :started",
            ConditionExpression=f"attribute_exists({PK})",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":e": {"L": [_s(execution_id)]},
                ":empty": {"L": []},
                ":started": _s("started"),
            },
        )

    async def _get_request_raw(self, request_id: str) -> dict[str, Any] | None:
        response = await self._ddb.get_item(
            TableName=self._table, Key=request_key(request_id).item(), ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def get_request(self, request_id: str) -> dict[str, Any] | None:
        raw = await self._get_request_raw(request_id)
        if raw is None:
            return None
        plain = _plain(raw)
        for key in (PK, SK, LISTING_PK, LISTING_SK, TTL):
            plain.pop(key, None)
        plain["includes"] = int(plain.get("includes", 0))
        return plain
