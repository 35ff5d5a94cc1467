"""The ``local`` backend: seqferry's own transfer engine (DataSync semantics, native S3 byte path).

``LocalBackend`` is loaded on first use, not with the package: the executor's settings read
:mod:`~seqferry_executor.backends.local.config`, and a deployment of the ``datasync`` backend must not load the
engine and its native S3 client (awscrt) for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqferry_executor.backends.local.config import LocalBackendConfig

if TYPE_CHECKING:
    from seqferry_executor.backends.local.backend import LocalBackend

__all__ = ["LocalBackend", "LocalBackendConfig"]


def __getattr__(name: str) -> object:
    if name == "LocalBackend":
        from seqferry_executor.backends.local.backend import LocalBackend  # noqa: PLC0415 - loaded when chosen

        return LocalBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
