"""The executor's persistence in the state table.

Items (``pk`` / ``sk``):

- ``task#<name>`` / ``state`` — the task's queue head: version, next arrival number, the active part
  (``gsi1pk=executor#tasks`` lists every task, so polling resumes after a restart);
- ``task#<name>`` / ``q#<arrival>`` — one pending work item each, in arrival order (include lists can be large,
  so they do not share one item);
- ``exec#<execution id>`` / ``exec`` — an execution record (``gsi1pk=executor#executions``, newest first);
- ``req#<request id>`` / ``req`` — a ``Transfer Requested``: accepted or rejected with its reasons, and the
  executions it caused (``gsi1pk=executor#requests``); rejected windows are recorded as ``req#window#<task>#<tick>``.

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

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from seqferry_executor.domain.executions import ExecutionRecord
from seqferry_executor.domain.queue import Active, TaskQueue, WorkItem, WorkKind

STATE_SK = "state"
ITEM_SK_PREFIX = "q#"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class VersionConflictError(RuntimeError):
    """Someone else changed the task's queue since it was read."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def task_pk(task: str) -> str:
    return f"task#{task}"


def item_sk(seq: int) -> str:
    return f"{ITEM_SK_PREFIX}{seq:012d}"


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

    def _expires_at(self) -> dict[str, str]:
        return {"N": str(int(time.time()) + self._record_ttl_s)}

    async def ping(self) -> None:
        await self._ddb.describe_table(TableName=self._table)

    # -- task queues ------------------------------------------------------------------------------------------
    async def load_queue(self, task: str) -> TaskQueue:
        state: dict[str, Any] | None = None
        items: list[WorkItem] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(task_pk(task))},
            "ConsistentRead": True,
        }
        while True:
            response = await self._ddb.query(**kwargs)
            for raw in response.get("Items", []):
                sk = raw["sk"]["S"]
                if sk == STATE_SK:
                    state = _plain(raw)
                elif sk.startswith(ITEM_SK_PREFIX):
                    items.append(_item_from_json(raw["data"]["S"]))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if state is None:
            return TaskQueue(task=task, items=tuple(sorted(items, key=lambda i: i.seq)))
        return TaskQueue(
            task=task,
            version=int(state["version"]),
            next_seq=int(state["next_seq"]),
            active=_active_from_json(state["active"]) if state.get("active") else None,
            items=tuple(sorted(items, key=lambda i: i.seq)),
        )

    async def save_queue(self, old: TaskQueue, new: TaskQueue) -> TaskQueue:
        """Persist ``new`` if the stored queue is still at ``old.version``; returns it with the next version."""
        saved = TaskQueue(
            task=new.task, version=old.version + 1, next_seq=new.next_seq, active=new.active, items=new.items
        )
        pk = task_pk(new.task)
        state_item: dict[str, Any] = {
            "pk": _s(pk),
            "sk": _s(STATE_SK),
            "version": {"N": str(saved.version)},
            "next_seq": {"N": str(saved.next_seq)},
            "pending": {"N": str(len(saved.pending))},
            "gsi1pk": _s("executor#tasks"),
            "gsi1sk": _s(new.task),
        }
        if saved.active is not None:
            state_item["active"] = _s(_active_json(saved.active))
        put_state: dict[str, Any] = {"TableName": self._table, "Item": state_item}
        if old.version == 0:
            put_state["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put_state["ConditionExpression"] = "version = :v"
            put_state["ExpressionAttributeValues"] = {":v": {"N": str(old.version)}}
        actions: list[dict[str, Any]] = [{"Put": put_state}]
        before = {i.seq: i for i in old.items}
        after = {i.seq: i for i in new.items}
        for seq, item in after.items():
            if before.get(seq) != item:
                entry = {"pk": _s(pk), "sk": _s(item_sk(seq)), "data": _s(_item_json(item))}
                actions.append({"Put": {"TableName": self._table, "Item": entry}})
        for seq in before.keys() - after.keys():
            key = {"pk": _s(pk), "sk": _s(item_sk(seq))}
            actions.append({"Delete": {"TableName": self._table, "Key": key}})
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
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :tasks",
            "ExpressionAttributeValues": {":tasks": _s("executor#tasks")},
            "ProjectionExpression": "gsi1sk",
        }
        while True:
            response = await self._ddb.query(**kwargs)
            names.extend(raw["gsi1sk"]["S"] for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return names
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- executions -------------------------------------------------------------------------------------------
    async def put_execution(self, record: ExecutionRecord) -> None:
        item = {
            "pk": _s(f"exec#{record.execution_id}"),
            "sk": _s("exec"),
            "data": _s(record.model_dump_json()),
            "state": _s(record.state.value if record.state else "STARTING"),
            "task": _s(record.task),
            "gsi1pk": _s("executor#executions"),
            "gsi1sk": _s(f"{record.started_at.isoformat()}#{record.execution_id}"),
            "expires_at": self._expires_at(),
        }
        await self._ddb.put_item(TableName=self._table, Item=item)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        response = await self._ddb.get_item(
            TableName=self._table,
            Key={"pk": _s(f"exec#{execution_id}"), "sk": _s("exec")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return ExecutionRecord.model_validate_json(item["data"]["S"]) if item else None

    async def recent_executions(self, limit: int) -> list[ExecutionRecord]:
        response = await self._ddb.query(
            TableName=self._table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": _s("executor#executions")},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [ExecutionRecord.model_validate_json(raw["data"]["S"]) for raw in response.get("Items", [])]

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
            "pk": _s(f"req#{request_id}"),
            "sk": _s("req"),
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
            "gsi1pk": _s("executor#requests"),
            "gsi1sk": _s(f"{now.isoformat()}#{request_id}"),
            "expires_at": self._expires_at(),
        }
        if reasons:
            item["reasons"] = {"L": [_s(r) for r in reasons]}
        try:
            await self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            existing = exc.response.get("Item") or await self._get_request_raw(request_id) or {}
            same = existing.get("event_id", {}).get("S") == event_id
            return "retry" if same else "duplicate"
        return "new"

    async def add_request_execution(self, request_id: str, execution_id: str) -> None:
        await self._ddb.update_item(
            TableName=self._table,
            Key={"pk": _s(f"req#{request_id}"), "sk": _s("req")},
            UpdateExpression="SET executions = list_append(if_not_exists(executions, :empty), :e), #s = :started",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":e": {"L": [_s(execution_id)]},
                ":empty": {"L": []},
                ":started": _s("started"),
            },
        )

    async def _get_request_raw(self, request_id: str) -> dict[str, Any] | None:
        response = await self._ddb.get_item(
            TableName=self._table, Key={"pk": _s(f"req#{request_id}"), "sk": _s("req")}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def get_request(self, request_id: str) -> dict[str, Any] | None:
        raw = await self._get_request_raw(request_id)
        if raw is None:
            return None
        plain = _plain(raw)
        for key in ("pk", "sk", "gsi1pk", "gsi1sk", "expires_at"):
            plain.pop(key, None)
        plain["includes"] = int(plain.get("includes", 0))
        return plain
