"""The embedded AWS emulator: moto's server mode, without moto's register of every model object it ever made.

moto appends each model instance it creates (every DynamoDB item, S3 object version, SQS message, log event...)
to a class-level list that only its dashboard (``/moto-api/data.json``) reads and only ``/moto-api/reset`` clears.
Nothing is ever dropped from it: a deleted SQS message, an overwritten object or a deleted item stays in memory for
the life of the server. Worse, ``TransactWriteItems`` snapshots every table it touches with ``copy.deepcopy`` (to
roll back on failure), so each transaction registers a copy of every item in the table: memory grows with
transactions times items. Under the fault tier's load soak (1,000 requests, each moving the executor's task queue
through several transactions on the one state table) that took the emulator past 12 GB.

:func:`forget_models` stops the registering. What the emulator serves is unchanged (its state lives in the backends,
not in that list); the dashboard's model listing is then empty. Real AWS forgets what was deleted, and so does this.

:func:`item_level_transactions` keeps, for a ``TransactWriteItems``, a copy of the items it names instead of the
whole table, and puts those back when it is cancelled. moto's whole-table copy made each transaction cost time in
proportion to the table (half the emulator's CPU in the load soak, where the table holds every request's records)
and, on a cancel, put back the whole table as it was when the transaction began, dropping what other clients wrote
meanwhile. DynamoDB's cancel touches only the transaction's own items, as this does.

This module needs only the standard library and moto, so the emulator image (``deploy/emulator/Dockerfile``) runs
the same file: ``python emulator.py -H HOST -p PORT`` takes moto's server options.
"""

from __future__ import annotations

import copy
import sys
import threading
from typing import Any


def forget_models() -> None:
    """Create moto's model objects without appending them to moto's process-wide instance register."""
    from moto.core.common_models import BaseModel  # noqa: PLC0415 - moto is the emulator's dependency, not the runtime's

    if getattr(BaseModel, "_seqferry_untracked", False):
        return

    def new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]
    BaseModel._seqferry_untracked = True  # type: ignore[attr-defined]


def item_level_transactions() -> None:
    """Make ``TransactWriteItems`` keep and restore only the items it names (see the module's docstring)."""
    import moto.dynamodb.models as dynamodb  # noqa: PLC0415 - moto is the emulator's dependency
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    backend_class = dynamodb.DynamoDBBackend
    if getattr(backend_class, "_seqferry_item_level", False):
        return
    whole_table = backend_class.transact_write_items
    in_transaction = threading.local()

    class _Copy:
        """moto's ``copy`` module, except that a table is not copied while a transaction keeps its own items."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if isinstance(value, Table) and getattr(in_transaction, "active", False):
                return value  # moto's "rollback" then puts back the live table: a no-op
            return copy.deepcopy(value, memo)

    def item_key(table: Any, attributes: dict[str, Any]) -> tuple[Any, Any] | None:
        if table.hash_key_attr not in attributes:
            return None
        hash_value = DynamoType(attributes[table.hash_key_attr])
        if table.range_key_attr is None:
            return hash_value, None
        if table.range_key_attr not in attributes:
            return None
        return hash_value, DynamoType(attributes[table.range_key_attr])

    def put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        kept: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            for op_type, op in entry.items():
                if not isinstance(op, dict):
                    continue  # moto answers a malformed request with its validation error
                table = self.tables.get(op.get("TableName"))
                attributes = op.get("Item") if op_type == "Put" else op.get("Key")
                if table is None or not isinstance(attributes, dict):
                    continue
                try:
                    key = item_key(table, attributes)
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue
                if key is not None:
                    kept.append((table, *key, copy.deepcopy(table.get_item(*key))))
        in_transaction.active = True
        try:
            whole_table(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(kept):
                put_back(table, hash_value, range_value, item)
            raise
        finally:
            in_transaction.active = False

    setattr(dynamodb, "copy", _Copy())  # noqa: B010 - the module's own name for copy, replaced
    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend_class._seqferry_item_level = True  # type: ignore[attr-defined]


def prepare() -> None:
    """Everything the emulator changes in moto; call before it serves."""
    forget_models()
    item_level_transactions()


def main(argv: list[str] | None = None) -> None:
    """moto's server (same options as ``python -m moto.server``), with :func:`prepare` applied."""
    prepare()
    from moto.server import main as moto_main  # noqa: PLC0415 - after the patch, as moto loads its models lazily

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
