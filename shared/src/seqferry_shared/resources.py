"""One declaration of every AWS resource seqferry uses; :mod:`seqferry_shared.bootstrap` creates them.

Names derive from one prefix so several stacks (or test runs) can share an account or emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seqferry_shared.events.aws import DataSyncStateChange
from seqferry_shared.events.models import (
    EventDetail,
    TransferExecutionStateChanged,
    TransferRequested,
    TransferWindowOpened,
)

ADHOC_PREFIX = "adhoc/"
ADHOC_RESULTS_PREFIX = "adhoc/results/"
STORAGE_CLASS_TAG = "seqferry-class"

# Lifecycle classes (values of the STORAGE_CLASS_TAG object tag). S3 lifecycle filters cannot match file suffixes,
# so every object seqferry delivers, whichever backend wrote it, is tagged with one of these (the local engine when
# it uploads, the DataSync backend after each execution); lifecycle rules match the tag.
BASECALLS = "basecalls"
ALIGNMENTS = "alignments"
VARIANTS = "variants"
READS = "reads"
RUN_DATA = "run"  # everything else in a run folder: InterOp, XML, sample sheets, logs, thumbnails
ADHOC = "adhoc"  # ad-hoc manifests, their results and the NAS ad-hoc folder: never archived


def manifest_result_key(manifest_key: str) -> str:
    """Where the adhoc service writes a manifest's result: ``adhoc/<name>`` -> ``adhoc/results/<name>.json``."""
    return f"{ADHOC_RESULTS_PREFIX}{manifest_key.removeprefix(ADHOC_PREFIX)}.json"


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
        BASECALLS,
    ),
    ((".bam", ".bai", ".cram", ".crai"), ALIGNMENTS),
    ((".vcf", ".vcf.gz", ".g.vcf.gz", ".bcf"), VARIANTS),
    ((".fastq", ".fastq.gz", ".fq", ".fq.gz", ".ora"), READS),
)


def object_class(key: str, adhoc_prefixes: tuple[str, ...] = (ADHOC_PREFIX,)) -> str:
    """Lifecycle class of an object key: ``adhoc`` under an ad-hoc prefix (never archived, whatever the file),
    else from its suffix, else ``run``."""
    if key.startswith(adhoc_prefixes):
        return ADHOC
    lower = key.lower()
    for suffixes, klass in _SUFFIX_CLASSES:
        if lower.endswith(suffixes):
            return klass
    return RUN_DATA


def adhoc_prefixes(adhoc_path: str) -> tuple[str, ...]:
    """Key prefixes that are never archived: the bucket's ``adhoc/`` and the NAS ad-hoc folder's keys."""
    folder = adhoc_path.strip("/")
    return tuple(dict.fromkeys((ADHOC_PREFIX, f"{folder}/" if folder else ADHOC_PREFIX)))


def trusted(model: type[EventDetail]) -> dict[str, Any]:
    """An event pattern matching ``model``'s detail-type from the sources allowed to send it, and no other.

    Every rule matches ``source`` as well as ``detail-type``: a service (or anyone) putting a detail-type it does
    not own on the bus reaches nobody. IAM restricts each role to its own source (``deploy/terraform/iam.tf``).
    """
    return {"source": model.source_filter(), "detail-type": [model.DETAIL_TYPE]}


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
    run_data_to_glacier_ir_days: int = 30
    reads_expire_days: int | None = None
    noncurrent_expire_days: int = 30
    abort_multipart_days: int = 7


# Days the local engine's per-file transfer log is kept (the reference kept DataSync's for 90).
TRANSFER_LOG_RETENTION_DAYS = 90


@dataclass(frozen=True, slots=True)
class ResourceNames:
    prefix: str
    bus: str
    bucket: str
    log_bucket: str
    table: str
    topic: str
    transfer_log_group: str
    metrics_namespace: str
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
            transfer_log_group=f"/seqferry/{prefix}/transfers",
            metrics_namespace=prefix,
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
                pattern={"$or": [trusted(TransferWindowOpened), trusted(TransferRequested)]},
                queue=self.executor_queue.name,
            ),
            RuleSpec(
                name=f"{self.prefix}-to-notifier",
                bus=self.bus,
                pattern=trusted(TransferExecutionStateChanged),
                queue=self.notifier_queue.name,
            ),
            RuleSpec(
                name=f"{self.prefix}-datasync-to-notifier",
                bus="default",
                pattern={
                    "source": [DataSyncStateChange.SOURCE],
                    "detail-type": [DataSyncStateChange.DETAIL_TYPE],
                },
                queue=self.notifier_queue.name,
            ),
        )
