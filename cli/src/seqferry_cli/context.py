"""What every command receives: the settings, the output, and factories for AWS clients and service APIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from seqferry_cli.output import Output
from seqferry_cli.settings import CliSettings

if TYPE_CHECKING:
    from seqferry_cli.aws import Aws
    from seqferry_cli.service_api import ServiceApi


@dataclass
class CliContext:
    settings: CliSettings
    out: Output
    _aws: Aws | None = field(default=None, init=False)

    @property
    def aws(self) -> Aws:
        if self._aws is None:
            # boto3 costs a few hundred milliseconds to import: only commands that talk to AWS pay for it.
            from seqferry_cli.aws import Aws  # noqa: PLC0415

            self._aws = Aws(self.settings)
        return self._aws

    @contextmanager
    def api(self, service: str, *, token: str | None = None) -> Iterator[ServiceApi]:
        from seqferry_cli.service_api import service_api  # noqa: PLC0415

        client = service_api(self.settings, service, token=token)
        try:
            yield client
        finally:
            client.close()
