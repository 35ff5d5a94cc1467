"""Build the configured transfer backend; the ``local`` engine is imported only when it is chosen."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from seqferry_executor.backends.base import TransferBackend
from seqferry_executor.backends.datasync import DataSyncBackend

if TYPE_CHECKING:
    from seqferry_executor.settings import ExecutorSettings
    from seqferry_shared.aws import ClientFactory


async def build_backend(settings: ExecutorSettings, clients: ClientFactory) -> TransferBackend:
    if settings.backend == "datasync":
        return await DataSyncBackend.create(settings=settings, clients=clients)
    # Imported by name so that a deployment of the datasync backend never loads the local engine.
    local = importlib.import_module("seqferry_executor.backends.local")
    backend: TransferBackend = await local.LocalBackend.create(settings=settings, clients=clients)
    return backend
