"""The ``local`` backend: seqferry's own transfer engine (DataSync semantics, native S3 byte path)."""

from seqferry_executor.backends.local.backend import LocalBackend
from seqferry_executor.backends.local.config import LocalBackendConfig

__all__ = ["LocalBackend", "LocalBackendConfig"]
