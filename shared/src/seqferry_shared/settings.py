"""Settings base shared by every service.

Every service subclasses :class:`ServiceSettings`; values come from ``SEQFERRY_*`` environment variables, and
the AWS endpoint from the standard ``AWS_ENDPOINT_URL`` (set it to the emulator in dev; leave it unset on AWS).
Settings are built once, in each service's ``__main__``, and passed down.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import botocore.session
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from seqferry_shared.resources import ResourceNames
from seqferry_shared.sequencers import (
    DEFAULT_SEQUENCER_PATHS,
    SequencerPath,
    checked_folder,
    parse_sequencer_paths,
)

DEV_API_TOKEN = "dev-token-change-me"  # noqa: S105 - the documented dev default, refused outside dev


@cache
def service_endpoint_variable(service: str) -> str:
    """``AWS_ENDPOINT_URL_`` + the service's id, upper case, spaces as underscores (the SDKs' rule)."""
    service_id = botocore.session.get_session().get_service_model(service).service_id
    return "AWS_ENDPOINT_URL_" + str(service_id).replace(" ", "_").upper()


def parse_roots(value: str, variable: str) -> list[str]:
    """Comma-separated NAS-absolute folders (not patterns, not '/'); raises ValueError naming entry and variable."""
    roots: list[str] = []
    for position, raw in enumerate(value.split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        root = checked_folder(entry, f"{variable} entry #{position}")
        if root == "/":
            raise ValueError(f"{variable} entry #{position} must not be '/': that would allow the whole NAS")
        if root not in roots:
            roots.append(root)
    return roots


class ServiceSettings(BaseSettings):
    # A refused setting is reported by name and reason, never with its value: values include secrets.
    model_config = SettingsConfigDict(
        env_prefix="SEQFERRY_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    environment: Literal["dev", "test", "prod"] = Field(
        default="dev",
        description="dev and test allow insecure defaults; prod refuses them.",
    )
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("SEQFERRY_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "SEQFERRY_AWS_ENDPOINT_URL"),
        description="Emulator endpoint (moto server or LocalStack); unset on AWS.",
    )
    datasync_endpoint_url: str | None = Field(
        default=None,
        description="DataSync endpoint override (VPC endpoint, emulator); other AWS APIs keep AWS_ENDPOINT_URL.",
    )
    aws_max_attempts: int = Field(default=8, ge=1, description="Total attempts per AWS call, the first included.")
    aws_retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard",
        description="botocore retry mode. 'standard': each refused call waits a jittered exponential backoff "
        "(at most 20 s) and retries, whatever else is in flight. 'adaptive' also slows the whole client down "
        "(a client-side rate limiter) after throttling answers: for a sustained, rate-dependent limit only.",
    )
    prefix: str = Field(
        default="seqferry",
        pattern=r"^[a-z][a-z0-9-]{0,30}$",
        description="Resource name prefix.",
    )
    bucket: str | None = Field(default=None, description="Destination bucket; default '<prefix>-runs'.")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    readiness_timeout_s: float = Field(default=2.0, gt=0)
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest HTTP request body; larger ones (chunked too) are refused with 413 while streaming.",
    )
    api_token: SecretStr = Field(
        default=SecretStr(DEV_API_TOKEN),
        description="Bearer token for mutating HTTP endpoints.",
    )
    sequencer_paths: str = Field(
        default=DEFAULT_SEQUENCER_PATHS,
        description="Comma-separated NAS-absolute instrument folders, each optionally '=instrument'.",
    )
    lab_time_zone: str = Field(
        default="UTC", description="IANA time zone of the lab; run-folder dates are computed in it."
    )
    adhoc_path: str = Field(default="/adhoc", description="NAS-absolute ad-hoc folder (always transferred).")
    adhoc_extra_roots: str = Field(
        default="",
        description="Comma-separated NAS-absolute folders outside the sequencer paths that ad-hoc requests may name "
        "(a one-off instrument, a re-analysis share); read by adhoc and the executor alike.",
    )
    cloudwatch_metrics: bool = Field(
        default=False, description="Push the service's metrics to CloudWatch (namespace: the prefix) for the dashboard."
    )
    cloudwatch_metrics_interval_s: float = Field(
        default=60.0, ge=1, description="Seconds between two CloudWatch metric exports."
    )
    sqs_wait_time_s: int = Field(default=20, ge=0, le=20, description="SQS long-poll seconds.")
    sqs_visibility_timeout_s: int = Field(
        default=60,
        ge=2,
        description="A heartbeat extends it at half its length while a handler runs (so at least 2 s, a whole second "
        "apart).",
    )
    shutdown_grace_s: float = Field(
        default=25.0,
        ge=0,
        description="At SIGTERM, in-flight messages get this long to finish; unfinished ones return to their queue.",
    )

    def endpoint_url_for(self, service: str) -> str | None:
        """The endpoint of one AWS API: the DataSync override for DataSync; else, against an emulator, the SDKs'
        per-service variable ``AWS_ENDPOINT_URL_<SERVICE>`` (e.g. DynamoDB on moto while LocalStack serves the
        rest), else ``AWS_ENDPOINT_URL``. On AWS (no endpoint set) botocore reads those variables itself."""
        if service == "datasync" and self.datasync_endpoint_url:
            return self.datasync_endpoint_url
        if not self.aws_endpoint_url:
            return None
        return os.environ.get(service_endpoint_variable(service)) or self.aws_endpoint_url

    @property
    def names(self) -> ResourceNames:
        return ResourceNames.for_prefix(self.prefix, bucket=self.bucket)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.lab_time_zone)

    @field_validator("lab_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("adhoc_path")
    @classmethod
    def _adhoc_folder(cls, value: str) -> str:
        return checked_folder(value, "adhoc path")

    @field_validator("adhoc_extra_roots")
    @classmethod
    def _extra_roots(cls, value: str) -> str:
        roots = parse_roots(value, "SEQFERRY_ADHOC_EXTRA_ROOTS")
        return ",".join(roots)

    @property
    def sequencers(self) -> list[SequencerPath]:
        return parse_sequencer_paths(self.sequencer_paths)

    @property
    def extra_roots(self) -> list[str]:
        """Folders ad-hoc requests may name besides the sequencer paths."""
        return parse_roots(self.adhoc_extra_roots, "SEQFERRY_ADHOC_EXTRA_ROOTS")

    @property
    def request_roots(self) -> list[str]:
        """Where an ad-hoc request's paths may lie: the sequencer paths, then the extra roots."""
        roots = [s.path for s in self.sequencers]
        return roots + [root for root in self.extra_roots if root not in roots]

    @property
    def roots(self) -> list[str]:
        """Where transfer include patterns may point: the sequencer paths, the extra ad-hoc roots, the ad-hoc folder."""
        return [*self.request_roots, self.adhoc_path]

    @model_validator(mode="after")
    def _check_sequencer_paths(self) -> Self:
        parse_sequencer_paths(self.sequencer_paths)
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.environment == "prod" and self.api_token.get_secret_value() == DEV_API_TOKEN:
            raise ValueError("SEQFERRY_API_TOKEN must be set to a secret value when SEQFERRY_ENVIRONMENT=prod")
        if self.environment == "prod" and len(self.api_token.get_secret_value()) < 16:
            raise ValueError("SEQFERRY_API_TOKEN must be at least 16 characters when SEQFERRY_ENVIRONMENT=prod")
        return self
