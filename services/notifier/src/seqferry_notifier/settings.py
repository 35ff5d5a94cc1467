"""Notifier settings (``SEQFERRY_*`` environment variables on top of the shared base)."""

from __future__ import annotations

from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, TypeAdapter, ValidationError, field_validator, model_validator

from seqferry_notifier.domain.dashboard import range_of
from seqferry_shared.settings import ServiceSettings

_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


class NotifierSettings(ServiceSettings):
    http_port: int = Field(default=8080, description="Port of the dashboard and API.")
    stall_deadline_s: float = Field(
        default=6 * 3600,
        gt=0,
        description="A run that is not delivered and shows no progress for this long is reported as stalled.",
    )
    datasync_poll_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="DescribeTaskExecution for DataSync executions left non-terminal this long since last looked at.",
    )
    datasync_poll_max_age_h: float = Field(
        default=7 * 24, gt=0, description="Stop polling non-terminal DataSync executions not updated for this long."
    )
    sweep_interval_s: float = Field(
        default=15.0, gt=0, description="How often stalled runs and undelivered notifications are looked for."
    )
    listing_min_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="Least time between two S3 listings of a run for progress (a possible completion always lists).",
    )
    recheck_interval_s: float = Field(
        default=120.0,
        gt=0,
        description="Runs whose executions are done but whose S3 objects did not match are listed again this often.",
    )
    incomplete_grace_s: float = Field(
        default=1800.0,
        ge=0,
        description="A run whose completion marker and every file are in S3 but whose RunInfo.xml cycles are not "
        "all there (and that wrote no RunCompletionStatus.xml saying so) is reported incomplete after this long "
        "without progress.",
    )
    check_cycles: bool = Field(
        default=True, description="Require the base-call cycles in S3 to match RunInfo.xml before delivery."
    )
    manifest_name: str = Field(
        default="{run_id}.seqferry-manifest.json",
        description="Name of the checksum manifest, written next to the run folder; must contain {run_id}.",
    )
    manifest_concurrency: int = Field(
        default=16, ge=1, le=64, description="Parallel GetObjectAttributes calls while building a manifest."
    )
    sns_topic_arn: str | None = Field(
        default=None, description="Notification topic; default: '<prefix>-notifications' in this account."
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description=(
            "Optional webhook (Slack-compatible JSON: {'text': ...}) for notifications; a secret (the URL is the "
            "credential of a Slack incoming webhook), never printed."
        ),
    )
    webhook_retries: int = Field(default=3, ge=0, le=10, description="Retries of one webhook call on 5xx/timeouts.")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_backoff_s: float = Field(default=1.0, ge=0, description="First retry delay; doubles each retry.")
    notice_lease_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How long a notification stays with the worker delivering it beyond its send deadline (to record the "
            "outcome) before another worker may take it over; also the grace after it is opened."
        ),
    )
    notice_send_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Deadline of one send to one channel (the bus with its SDK retries, SNS, the webhook with its retries); "
            "no other worker can take a notification over while a send is in flight. A channel that takes longer "
            "is retried later with the same event id."
        ),
    )
    notice_max_attempts: int = Field(default=12, ge=1, description="Delivery attempts before a channel is given up.")
    notice_retry_base_s: float = Field(
        default=5.0, gt=0, description="First delay before an undelivered notification is retried; doubles, max 10 min."
    )
    execution_retention_days: int = Field(default=90, ge=1, description="Execution records expire (TTL) after this.")
    dashboard_range: str = Field(
        default="24h",
        description="Range the dashboard opens with: 1h, 6h, 24h, 7d, 14d or 28d (the page can change it).",
    )
    dashboard_refresh_ms: int = Field(default=1500, ge=250, description="How often the dashboard page refreshes.")
    dashboard_cache_s: float = Field(
        default=1.0, ge=0, description="Aggregates are recomputed at most this often, however many viewers."
    )

    @field_validator("dashboard_range")
    @classmethod
    def _dashboard_range(cls, value: str) -> str:
        range_of(value)
        return value

    @field_validator("manifest_name")
    @classmethod
    def _manifest_name(cls, value: str) -> str:
        if "{run_id}" not in value or "/" in value:
            raise ValueError("manifest_name must contain {run_id} and no '/'")
        try:
            value.format(run_id="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"manifest_name is not a valid template: {exc}") from exc
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_a_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            _URL.validate_python(value.get_secret_value())
        except ValidationError as exc:
            # The reason only: the value is a credential.
            reasons = "; ".join(error["msg"] for error in exc.errors(include_input=False))
            raise ValueError(f"not an http(s) URL ({reasons})") from None
        return value

    @property
    def webhook(self) -> str | None:
        """The webhook URL, for the one place that calls it."""
        return self.webhook_url.get_secret_value() if self.webhook_url is not None else None

    @model_validator(mode="after")
    def _secure_webhook_in_prod(self) -> Self:
        webhook = self.webhook
        if self.environment == "prod" and webhook is not None and _URL.validate_python(webhook).scheme != "https":
            raise ValueError("SEQFERRY_WEBHOOK_URL must be https when SEQFERRY_ENVIRONMENT=prod")
        return self
