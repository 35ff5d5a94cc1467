"""AWS client construction: one place for endpoint, region, retries and addressing.

Clients are built by a :class:`ClientFactory` owned by a service's lifespan and passed to whoever needs them;
nothing here is a module-level client.

Endpoints come from :meth:`ServiceSettings.endpoint_url_for` (one emulator, per-service variables, DataSync's).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import boto3
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from seqferry_shared.settings import ServiceSettings


def _config_kwargs(settings: ServiceSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "retries": {"mode": settings.aws_retry_mode, "total_max_attempts": settings.aws_max_attempts},
        "connect_timeout": 5,
        "read_timeout": 60,
    }
    if settings.aws_endpoint_url:
        # Emulators answer on one host name; virtual-hosted buckets would need wildcard DNS.
        kwargs["s3"] = {"addressing_style": "path"}
    return kwargs


def client_kwargs(settings: ServiceSettings, service: str = "") -> dict[str, Any]:
    kwargs: dict[str, Any] = {"region_name": settings.aws_region}
    endpoint = settings.endpoint_url_for(service)
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return kwargs


class ClientFactory:
    """Creates and caches aiobotocore clients; close it once, at shutdown."""

    def __init__(self, settings: ServiceSettings, session: AioSession | None = None) -> None:
        self._settings = settings
        self._session = session or get_session()
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._config = AioConfig(max_pool_connections=50, **_config_kwargs(settings))

    async def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            creator = self._session.create_client(
                service, config=self._config, **client_kwargs(self._settings, service)
            )
            client = await self._stack.enter_async_context(creator)
            self._clients[service] = client
        return client

    async def close(self) -> None:
        await self._stack.aclose()
        self._clients.clear()

    async def __aenter__(self) -> ClientFactory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def sync_client(service: str, settings: ServiceSettings) -> Any:
    """A boto3 client with the same endpoint, region and retry policy (for CLI tools such as bootstrap)."""
    return boto3.client(service, config=Config(**_config_kwargs(settings)), **client_kwargs(settings, service))
