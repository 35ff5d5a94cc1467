"""Configuration of the ``local`` backend (nested under the executor's settings as ``local``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIB = 1024 * 1024
# S3 accepts at most 10,000 parts per upload, each at least 5 MiB except the last.
MIN_PART_SIZE = 5 * MIB


class LocalBackendConfig(BaseModel):
    """Tuning of seqferry's own transfer engine. Environment: ``SEQFERRY_LOCAL__<FIELD>``."""

    model_config = ConfigDict(extra="forbid")

    quiet_period_s: float = Field(
        default=2.0,
        ge=0,
        description="With the optimistic path off, a file the instrument's writing pattern says nothing about ships "
        "only after neither its content nor its metadata changed for this long.",
    )
    optimistic: bool = Field(
        default=True,
        description="Ship files the writing pattern says nothing about once quiet for settle_s (not quiet_period_s): "
        "checked unchanged after the upload, sent again if they change later.",
    )
    settle_s: float = Field(
        default=0.1,
        ge=0,
        le=60,
        description="Least time without a change before any file ships (capped at quiet_period_s). Must exceed the "
        "NAS's timestamp granularity and clock skew, so that a write after the upload always shows as a change.",
    )
    linger_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="A pass that leaves files it may ship soon (fresh ones, base-call files still shorter than their "
        "header says) watches them this long and ships each once ready, instead of leaving them to the next pass.",
    )
    hold_s: float = Field(
        default=300.0,
        ge=0,
        description="A file the instrument is known to be still writing (the newest cycle, InterOp before RTA is "
        "done, a base-call file shorter than its header says) ships early only once final; else after this long "
        "without a change (a run that stopped mid-cycle).",
    )
    checksum: Literal["crc32c", "sha256"] = Field(
        default="crc32c",
        description="Checksum computed while reading and checked by S3 on receipt.",
    )
    multipart_threshold: int = Field(
        default=16 * MIB, ge=MIN_PART_SIZE, description="Files larger than this are sent in parts."
    )
    part_size: int = Field(default=8 * MIB, ge=MIN_PART_SIZE, description="Size of one part of a multipart upload.")
    concurrency: int = Field(
        default=256,
        ge=1,
        le=4096,
        description="Files in flight at once (small files are latency-bound, so many).",
    )
    throughput_target_gbps: float = Field(
        default=2.0,
        gt=0,
        description="Sizes the native client's connection pool; more is not faster against one nearby server.",
    )
    small_object_max: int = Field(
        default=256 * 1024,
        ge=0,
        description="Files up to this size go through a connection pool sized for many small requests.",
    )
    small_throughput_target_gbps: float = Field(
        default=20.0,
        gt=0,
        description="Sizes that pool: small requests are latency-bound, so more connections keep the server busy.",
    )
    io_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Native event-loop threads; one saturates a local server and leaves the cores to the rest.",
    )
    memory_limit_mb: int = Field(
        default=256,
        ge=256,
        description="Cap of the native client's part buffers (its minimum is 256; its default 2 GiB or more).",
    )
    stream_parts: bool = Field(
        default=True,
        description="Read parts of large files straight into the socket (bounded memory) instead of buffering them.",
    )
    index_path: Path = Field(
        default=Path("var/state/local-index.sqlite"),
        description="Persistent change index (sqlite); rebuilt from the bucket when missing.",
    )
    rebuild_index: Literal["if-missing", "never", "always"] = Field(
        default="if-missing",
        description="When to rebuild the change index from the bucket at start.",
    )
    rebuild_concurrency: int = Field(default=32, ge=1, le=256, description="HeadObject calls in flight on rebuild.")
    follow_symlinks: bool = Field(
        default=False,
        description=(
            "Off: symbolic links are reported per file and never followed. On: a link is followed only when its "
            "resolved target lies under an allowed root (sequencer paths, extra ad-hoc roots, the ad-hoc folder)."
        ),
    )
    transfer_log: Literal["cloudwatch", "off"] = Field(
        default="cloudwatch",
        description="Per-file transfer log: one CloudWatch Logs stream per execution in "
        "'/seqferry/<prefix>/transfers', in DataSync's TRANSFER-level line format.",
    )
    max_failures_reported: int = Field(
        default=20, ge=1, le=100, description="Problems (path and reason) listed per execution; all are counted."
    )
    executions_kept: int = Field(default=1000, ge=1, description="Finished executions kept for describe().")

    @model_validator(mode="after")
    def _threshold_holds_a_part(self) -> LocalBackendConfig:
        if self.multipart_threshold < self.part_size:
            raise ValueError("multipart_threshold must be at least part_size")
        return self
