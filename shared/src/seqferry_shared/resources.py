"""One declaration of every AWS resource seqferry uses; :mod:`seqferry_shared.bootstrap` creates them.

Names derive from one prefix so several stacks (or test runs) can share an account or emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seqferry_shared.events.models import (
    TransferExecutionStateChanged,
    TransferRequested,
    TransferWindowOpened,
)

DATASYNC_SOURCE = "aws.datasync"
DATASYNC_DETAIL_TYPE = "DataSync Task Execution State Change"
ADHOC_PREFIX = "adhoc/"
ADHOC_RESULTS_PREFIX = "adhoc/results/"
STORAGE_CLASS_TAG = "seqferry-class"

# Object tags drive lifecycle, since S3 lifecycle filters cannot match file suffixes.
_SUFFIX_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (
            ".bcl",
            ".bcl.gz",
            ".bcl.bgzf",
            ".cbcl",
            ".bci",
            ".filter",
            ".locs",
            ".clocs",
            ".stats",
        ),
        "basecalls",
    ),
    ((".bam", ".bai", ".cram", ".crai"), "alignments"),
    ((".vcf", ".vcf.gz", ".g.vcf.gz", ".bcf"), "variants"),
    ((".fastq", ".fastq.gz", ".fq", ".fq.gz", ".ora"), "reads"),
)


def object_class(key: str) -> str | None:
    """Lifecycle class of an object key from its suffix, or None (kept in Standard)."""
    lower = key.lower()
    for suffixes, klass in _SUFFIX_CLASSES:
        if lower.endswith(suffixes):
            return klass
    return None


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    dlq_name: str
    max_receive_count: int = 5
    visibility_timeout_s: int = 60
    retention_s: int = 14 * 24 * 3600


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    bus: str  # "default" for AWS service events
    pattern: dict[str, Any]
    queue: str


@dataclass(frozen=True, slots=True)
class LifecycleSpec:
    basecalls_to_deep_archive_days: int = 30
    alignments_to_deep_archive_days: int = 90
    variants_to_standard_ia_days: int = 30
    reads_expire_days: int | None = None
    noncurrent_expire_days: int = 30
    abort_multipart_days: int = 7


@dataclass(frozen=True, slots=True)
class ResourceNames:
    prefix: str
    bus: str
    bucket: str
    log_bucket: str
    table: str
    topic: str
    executor_queue: QueueSpec
    adhoc_queue: QueueSpec
    notifier_queue: QueueSpec
    lifecycle: LifecycleSpec = field(default_factory=LifecycleSpec)

    @classmethod
    def for_prefix(cls, prefix: str, *, bucket: str | None = None) -> ResourceNames:
        def queue(role: str) -> QueueSpec:
            return QueueSpec(name=f"{prefix}-{role}", dlq_name=f"{prefix}-{role}-dlq")

        return cls(
            prefix=prefix,
            bus=prefix,
            bucket=bucket or f"{prefix}-runs",
            log_bucket=f"{bucket or prefix + '-runs'}-logs",
            table=f"{prefix}-state",
            topic=f"{prefix}-notifications",
            executor_queue=queue("executor"),
            adhoc_queue=queue("adhoc"),
            notifier_queue=queue("notifier"),
        )

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        return (self.executor_queue, self.adhoc_queue, self.notifier_queue)

    @property
    def rules(self) -> tuple[RuleSpec, ...]:
        return (
            RuleSpec(
                name=f"{self.prefix}-to-executor",
                bus=self.bus,
                pattern={
                    "detail-type": [
                        TransferWindowOpened.DETAIL_TYPE,
                        TransferRequested.DETAIL_TYPE,
                    ]
                },
                queue=self.executor_queue.name,
            ),
            RuleSpec(
                name=f"{self.prefix}-to-notifier",
                bus=self.bus,
                pattern={
                    "source": [TransferExecutionStateChanged.SOURCE],
                    "detail-type": [TransferExecutionStateChanged.DETAIL_TYPE],
                },
                queue=self.notifier_queue.name,
            ),
            RuleSpec(
                name=f"{self.prefix}-datasync-to-notifier",
                bus="default",
                pattern={
                    "source": [DATASYNC_SOURCE],
                    "detail-type": [DATASYNC_DETAIL_TYPE],
                },
                queue=self.notifier_queue.name,
            ),
        )
