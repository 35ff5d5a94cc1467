"""What the command line needs to know about a deployment, from options, environment and a config file.

Precedence, highest first (as the AWS CLI does it): command-line options, environment variables, the config file
section of the profile, the config file's ``[default]`` section, built-in defaults (the ``make dev`` stack).

The environment variables are the services' own (``SEQFERRY_PREFIX``, ``SEQFERRY_SEQUENCER_PATHS``,
``SEQFERRY_API_TOKEN``, ``AWS_ENDPOINT_URL``, ...), so a shell that has a deployment's environment needs nothing
else; the service URLs are ``SEQFERRY_<SERVICE>_URL``.
"""

from __future__ import annotations

import getpass
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator

from seqferry_cli.errors import InvalidInputError
from seqferry_shared.settings import ServiceSettings

SERVICES = ("notifier", "scheduler", "executor", "adhoc", "simulator")
DEV_PORTS = {"notifier": 8080, "scheduler": 8081, "executor": 8082, "adhoc": 8083, "simulator": 8084}
CLI_SOURCE = "seqferry.cli"

OutputMode = Literal["table", "json"]
FollowMode = Literal["http", "events"]


def _url_field(service: str) -> Any:
    return Field(
        default=f"http://127.0.0.1:{DEV_PORTS[service]}",
        validation_alias=f"SEQFERRY_{service.upper()}_URL",
        description=f"Base URL of the {service}'s HTTP API; empty when the deployment has none.",
    )


def _default_requester() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:256]


class CliSettings(ServiceSettings):
    """The deployment as the CLI sees it. Inherits prefix, bucket, region, endpoint, roots and token handling."""

    aws_profile: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_PROFILE", "SEQFERRY_AWS_PROFILE"),
        description="AWS profile of the credentials (and, when not set otherwise, of the region).",
    )
    notifier_url: str = _url_field("notifier")
    scheduler_url: str = _url_field("scheduler")
    executor_url: str = _url_field("executor")
    adhoc_url: str = _url_field("adhoc")
    simulator_url: str = _url_field("simulator")
    http_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one HTTP call to a service.")
    source: str = Field(
        default=CLI_SOURCE,
        validation_alias="SEQFERRY_CLI_SOURCE",
        description="EventBridge source of the events the CLI puts (never 'aws.*').",
    )
    requested_by: str = Field(
        default_factory=_default_requester,
        validation_alias="SEQFERRY_REQUESTED_BY",
        max_length=256,
    )
    output: OutputMode = Field(default="table", validation_alias="SEQFERRY_OUTPUT", description="table or json")
    follow: FollowMode = Field(
        default="http",
        validation_alias="SEQFERRY_FOLLOW",
        description="How `request --wait` follows a request: the executor's HTTP API, or bus events.",
    )

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        # The services refuse the dev token in prod at start; the CLI only sends it (simulate), where the
        # service's answer (401/403) is the check that counts.
        return self

    @field_validator("source")
    @classmethod
    def _source_not_aws(cls, value: str) -> str:
        if not value or value.startswith("aws."):
            raise ValueError("the event source must not be empty or start with 'aws.' (EventBridge reserves it)")
        return value

    @property
    def region(self) -> str | None:
        """The region when one was given; None lets the AWS profile decide (the base class defaults to us-east-1)."""
        return self.aws_region if "aws_region" in self.model_fields_set else None

    def url(self, service: str) -> str:
        value: str = getattr(self, f"{service}_url")
        return value.rstrip("/")


def config_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    if os.environ.get("SEQFERRY_CONFIG"):
        return Path(os.environ["SEQFERRY_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "seqferry" / "config.toml"


def read_config(path: Path, profile: str | None, *, required: bool) -> dict[str, Any]:
    """``[default]`` overlaid with ``[profiles.<profile>]`` of the TOML config file; {} when there is none."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise InvalidInputError(f"config file {path} does not exist") from None
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"config file {path}: {exc}") from exc
    values: dict[str, Any] = {}
    sections: list[tuple[str, object]] = [("default", document.get("default", {}))]
    if profile:
        sections.append((f"profiles.{profile}", document.get("profiles", {}).get(profile, {})))
    for name, section in sections:
        if not isinstance(section, dict):
            raise InvalidInputError(f"config file {path}: [{name}] must be a table")
        values.update(section)
    unknown = sorted(set(values) - set(CliSettings.model_fields))
    if unknown:
        raise InvalidInputError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}",
            hint="settings are named as the fields in `seqferry --help` lists (prefix, executor_url, ...)",
        )
    return values


def load_settings(options: dict[str, Any], *, config_file: Path | None = None) -> CliSettings:
    """Settings from options (given ones only), environment, config file and defaults, in that order."""
    given = {k: v for k, v in options.items() if v is not None}
    try:
        from_env = CliSettings(**given)
        profile = from_env.aws_profile
        config = read_config(config_path(config_file), profile, required=config_file is not None)
        missing = {k: v for k, v in config.items() if k not in from_env.model_fields_set}
        return CliSettings(**missing, **given) if missing else from_env
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}" for error in exc.errors()]
        raise InvalidInputError("invalid settings", details=problems) from None
