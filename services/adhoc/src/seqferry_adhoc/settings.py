"""Settings of the adhoc service (``SEQFERRY_*`` environment variables, on top of the shared base)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from seqferry_adhoc.domain.manifest import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_LINES,
    ManifestLimits,
)
from seqferry_shared.patterns import MAX_PATTERN_LENGTH, is_under_roots
from seqferry_shared.settings import ServiceSettings, parse_roots

# A DynamoDB item holds at most 400 KB; an API request is stored whole, so its paths must fit with room to spare.
MAX_REQUEST_BYTES_CEILING = 300_000


class AdhocSettings(ServiceSettings):
    http_port: int = 8083
    adhoc_allowed_roots: str | None = Field(
        default=None,
        description=(
            "Comma-separated NAS-absolute folders that ad-hoc paths must lie under (segment by segment), to narrow "
            "the default; each must lie under a sequencer path or an extra root, or the executor would refuse it. "
            "Unset: the sequencer output paths and SEQFERRY_ADHOC_EXTRA_ROOTS. '/' is refused."
        ),
    )
    adhoc_max_manifest_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, ge=1, le=64 * 1024 * 1024, description="Largest manifest object read, in bytes."
    )
    adhoc_max_lines: int = Field(
        default=DEFAULT_MAX_LINES, ge=1, le=1_000_000, description="Most path lines per manifest or API request."
    )
    adhoc_max_line_length: int = Field(
        default=DEFAULT_MAX_LINE_LENGTH,
        ge=1,
        le=MAX_PATTERN_LENGTH,
        description="Longest path line, in characters.",
    )
    adhoc_max_request_bytes: int = Field(
        default=262_144,
        ge=1,
        le=MAX_REQUEST_BYTES_CEILING,
        description="Largest total size (UTF-8 bytes) of the paths in one HTTP request.",
    )
    adhoc_task: str | None = Field(
        default=None, description="Task named in the Transfer Requested events; unset: the executor's default."
    )
    adhoc_record_ttl_days: int = Field(
        default=90, ge=1, description="Days a request record stays readable at GET /transfers/{id}."
    )
    adhoc_consume: bool = Field(
        default=True, description="Consume manifest notifications from the adhoc queue (off: HTTP API only)."
    )

    @property
    def allowed_roots(self) -> list[str]:
        if self.adhoc_allowed_roots is None:
            return self.request_roots
        return parse_roots(self.adhoc_allowed_roots, "SEQFERRY_ADHOC_ALLOWED_ROOTS")

    @property
    def manifest_limits(self) -> ManifestLimits:
        return ManifestLimits(
            max_bytes=self.adhoc_max_manifest_bytes,
            max_lines=self.adhoc_max_lines,
            max_line_length=self.adhoc_max_line_length,
        )

    @model_validator(mode="after")
    def _check_roots(self) -> Self:
        roots = self.allowed_roots
        if not roots:
            raise ValueError("SEQFERRY_ADHOC_ALLOWED_ROOTS names no folder")
        outside = [root for root in roots if not is_under_roots(root, self.request_roots)]
        if outside:
            raise ValueError(
                f"SEQFERRY_ADHOC_ALLOWED_ROOTS: {', '.join(outside)} is not under a sequencer path or "
                "SEQFERRY_ADHOC_EXTRA_ROOTS, so the executor would refuse its paths; "
                "add it to SEQFERRY_ADHOC_EXTRA_ROOTS"
            )
        return self
