"""AWS clients for the command line: the profile, region and endpoint the user chose, and nothing global."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from seqferry_cli.settings import CliSettings


class Aws:
    """Creates and caches boto3 clients of one session (one profile, one region, one endpoint)."""

    def __init__(self, settings: CliSettings) -> None:
        self._settings = settings
        self._session = boto3.Session(profile_name=settings.aws_profile, region_name=settings.region)
        config: dict[str, Any] = {
            # A person is waiting: three attempts (about 3 s against a dead endpoint), not the services' eight.
            "retries": {"mode": "standard", "total_max_attempts": min(settings.aws_max_attempts, 3)},
            "connect_timeout": 5,
            "read_timeout": 30,
        }
        if settings.aws_endpoint_url:
            # Emulators answer on one host name; virtual-hosted bucket names would need wildcard DNS.
            config["s3"] = {"addressing_style": "path"}
        self._config = Config(**config)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str | None:
        region: str | None = self._session.region_name
        return region

    def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = self._session.client(
                service,
                config=self._config,
                endpoint_url=self._settings.endpoint_url_for(service),
            )
            self._clients[service] = client
        return client
