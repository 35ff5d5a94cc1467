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

This module needs only the standard library and moto, so the emulator image (``deploy/emulator/Dockerfile``) runs
the same file: ``python emulator.py -H HOST -p PORT`` takes moto's server options.
"""

from __future__ import annotations

import sys
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


def main(argv: list[str] | None = None) -> None:
    """moto's server (same options as ``python -m moto.server``), with :func:`forget_models` applied."""
    forget_models()
    from moto.server import main as moto_main  # noqa: PLC0415 - after the patch, as moto loads its models lazily

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
