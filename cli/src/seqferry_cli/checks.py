"""What `seqferry doctor` expects of a deployment, as pure functions of what AWS describes (no I/O here).

Each check returns findings: ``error`` when seqferry would lose data, stop working or break a safety promise of the
design (docs: README "Data safety"), ``warning`` when it deviates from what the reference design recommends,
``ok`` otherwise, ``info`` for what does not apply. Every finding that is not ``ok`` says how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from seqferry_shared.resources import (
    ADHOC_PREFIX,
    STORAGE_CLASS_TAG,
    QueueSpec,
    RuleSpec,
)

Level = Literal["ok", "info", "warning", "error"]
CONVERGE = "run seqferry-bootstrap (emulator or sandbox account) or apply deploy/terraform"

# The options the reference design (and the executor, per execution) sets on every DataSync transfer.
DATASYNC_OPTIONS = {
    "TransferMode": "CHANGED",
    "VerifyMode": "ONLY_FILES_TRANSFERRED",
    "LogLevel": "TRANSFER",
    "Atime": "BEST_EFFORT",
    "Mtime": "PRESERVE",
}
_ARCHIVE_CLASSES = {"DEEP_ARCHIVE", "GLACIER", "GLACIER_IR"}


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    area: str
    resource: str
    check: str
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _finding(*args: str) -> Finding:
    """``_finding(level, area, resource, check, message[, fix])``; ok and info findings carry no fix."""
    level, area, resource, check, message, *rest = args
    fix = rest[0] if rest and level not in ("ok", "info") else ""
    return Finding(level, area, resource, check, message, fix)  # type: ignore[arg-type]


# -- bucket -----------------------------------------------------------------------------------------------------
def bucket_encryption(bucket: str, config: Mapping[str, Any] | None) -> Finding:
    rules = (config or {}).get("Rules", [])
    algorithms = {r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules}
    fix = (
        f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
        '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"},"BucketKeyEnabled":true}]}\''
    )
    if algorithms & {"aws:kms", "aws:kms:dsse"}:
        return _finding("ok", "bucket", bucket, "encryption", "default encryption is SSE-KMS")
    if "AES256" in algorithms:
        return _finding(
            "warning", "bucket", bucket, "encryption", "default encryption is SSE-S3; seqferry recommends SSE-KMS", fix
        )
    return _finding("error", "bucket", bucket, "encryption", "no default encryption configured", fix)


_BPA_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def public_access_block(bucket: str, config: Mapping[str, Any] | None) -> Finding:
    off = [flag for flag in _BPA_FLAGS if not (config or {}).get(flag)]
    if not off:
        return _finding("ok", "bucket", bucket, "block public access", "all four Block Public Access settings are on")
    return _finding(
        "error",
        "bucket",
        bucket,
        "block public access",
        "Block Public Access is " + ("not configured" if config is None else "off for " + ", ".join(off)),
        f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
        "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
    )


def versioning(bucket: str, status: str | None) -> Finding:
    if status == "Enabled":
        return _finding("ok", "bucket", bucket, "versioning", "versioning is enabled")
    return _finding(
        "error",
        "bucket",
        bucket,
        "versioning",
        f"versioning is {(status or 'never enabled').lower()}: an overwritten or deleted object cannot be recovered, "
        "and ad-hoc manifests are not read by version",
        f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
    )


def _denies_insecure_transport(statement: Mapping[str, Any], bucket: str) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    condition = statement.get("Condition", {}).get("Bool", {})
    if str(condition.get("aws:SecureTransport", "")).lower() != "false":
        return False
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    resources = statement.get("Resource", [])
    resources = [resources] if isinstance(resources, str) else resources
    return "s3:*" in actions and f"arn:aws:s3:::{bucket}/*" in {r.replace("arn:aws-", "arn:aws") for r in resources}


def tls_only(bucket: str, policy: Mapping[str, Any] | None, *, plain_http_endpoint: bool) -> Finding:
    statements = (policy or {}).get("Statement", [])
    if any(_denies_insecure_transport(s, bucket) for s in statements):
        return _finding("ok", "bucket", bucket, "TLS only", "the bucket policy denies requests without TLS")
    if plain_http_endpoint:
        return _finding("info", "bucket", bucket, "TLS only", "not applicable: the endpoint is a plain-http emulator")
    return _finding(
        "error",
        "bucket",
        bucket,
        "TLS only",
        "no bucket policy statement denies requests without TLS (aws:SecureTransport=false)",
        "add a Deny statement for s3:* on the bucket and its objects when aws:SecureTransport is false; " + CONVERGE,
    )


def access_logging(bucket: str, logging: Mapping[str, Any] | None) -> Finding:
    enabled = (logging or {}).get("LoggingEnabled")
    if enabled:
        return _finding(
            "ok", "bucket", bucket, "access logs", f"server access logs go to s3://{enabled.get('TargetBucket')}/"
        )
    return _finding("warning", "bucket", bucket, "access logs", "server access logging is off", CONVERGE)


def _tag_of(rule: Mapping[str, Any]) -> tuple[str, str] | None:
    filt = rule.get("Filter") or {}
    tag = filt.get("Tag") or {}
    if not tag:
        tags = (filt.get("And") or {}).get("Tags") or []
        tag = tags[0] if len(tags) == 1 else {}
    return (tag["Key"], tag["Value"]) if tag else None


def _prefix_of(rule: Mapping[str, Any]) -> str:
    filt = rule.get("Filter") or {}
    return str(filt.get("Prefix", (filt.get("And") or {}).get("Prefix", rule.get("Prefix", ""))) or "")


def lifecycle(bucket: str, rules: Sequence[Mapping[str, Any]] | None) -> list[Finding]:
    fix = CONVERGE
    if not rules:
        return [
            _finding(
                "warning",
                "bucket",
                bucket,
                "lifecycle",
                "no lifecycle rules: raw data stays in S3 Standard, old versions and failed uploads are kept forever",
                fix,
            )
        ]
    enabled = [r for r in rules if r.get("Status") == "Enabled"]
    findings: list[Finding] = []

    def archives(klass: str) -> bool:
        return any(
            _tag_of(r) == (STORAGE_CLASS_TAG, klass)
            and any(t.get("StorageClass") in _ARCHIVE_CLASSES for t in r.get("Transitions", []))
            for r in enabled
        )

    for klass, what in (("basecalls", "base calls (BCL/CBCL)"), ("alignments", "alignments (BAM/CRAM)")):
        if archives(klass):
            findings.append(_finding("ok", "bucket", bucket, f"lifecycle {klass}", f"{what} move to an archive class"))
        else:
            findings.append(
                _finding(
                    "warning",
                    "bucket",
                    bucket,
                    f"lifecycle {klass}",
                    f"no enabled rule moves {what} (tag {STORAGE_CLASS_TAG}={klass}) to Deep Archive",
                    fix,
                )
            )
    checks = (
        ("AbortIncompleteMultipartUpload", "abort incomplete multipart uploads", "incomplete multipart uploads"),
        ("NoncurrentVersionExpiration", "noncurrent versions", "noncurrent versions"),
    )
    for key, check, what in checks:
        if any(key in r for r in enabled):
            findings.append(_finding("ok", "bucket", bucket, f"lifecycle {check}", f"{what} expire"))
        else:
            findings.append(
                _finding("warning", "bucket", bucket, f"lifecycle {check}", f"{what} are kept forever (cost)", fix)
            )
    archived_adhoc = [
        str(r.get("ID", "?"))
        for r in enabled
        if (r.get("Transitions") or r.get("Expiration"))
        and _tag_of(r) is None
        and (ADHOC_PREFIX.startswith(_prefix_of(r)) or _prefix_of(r).startswith(ADHOC_PREFIX))
    ]
    if archived_adhoc:
        findings.append(
            _finding(
                "error",
                "bucket",
                bucket,
                "lifecycle adhoc/",
                f"rule(s) {', '.join(archived_adhoc)} archive or expire objects under {ADHOC_PREFIX}: manifests and "
                "their results would become unreadable",
                f"limit those rules to a tag or prefix that excludes {ADHOC_PREFIX}",
            )
        )
    return findings


def adhoc_notifications(bucket: str, config: Mapping[str, Any] | None, queue_arn: str | None) -> Finding:
    for item in (config or {}).get("QueueConfigurations", []):
        events = item.get("Events", [])
        rules = (item.get("Filter") or {}).get("Key", {}).get("FilterRules", [])
        prefix = next((r.get("Value", "") for r in rules if str(r.get("Name", "")).lower() == "prefix"), "")
        created = any(e.startswith("s3:ObjectCreated:") for e in events)
        if created and ADHOC_PREFIX.startswith(prefix) and (queue_arn is None or item.get("QueueArn") == queue_arn):
            return _finding(
                "ok", "bucket", bucket, "adhoc notifications", f"objects created under {ADHOC_PREFIX} reach the queue"
            )
    return _finding(
        "error",
        "bucket",
        bucket,
        "adhoc notifications",
        f"no s3:ObjectCreated notification for {ADHOC_PREFIX} reaches the adhoc queue: "
        "uploaded manifests are never read",
        CONVERGE,
    )


# -- queues, bus, rules ------------------------------------------------------------------------------------------
def queue(spec: QueueSpec, attributes: Mapping[str, str] | None, dlq: Mapping[str, str] | None) -> list[Finding]:
    if attributes is None:
        return [_finding("error", "queue", spec.name, "exists", "the queue does not exist", CONVERGE)]
    findings: list[Finding] = []
    if dlq is None:
        findings.append(
            _finding("error", "queue", spec.dlq_name, "exists", "the dead-letter queue does not exist", CONVERGE)
        )
    try:
        redrive = json.loads(attributes.get("RedrivePolicy", "") or "{}")
    except ValueError:
        redrive = {}
    target = redrive.get("deadLetterTargetArn")
    if dlq is not None and target == dlq.get("QueueArn"):
        findings.append(
            _finding(
                "ok",
                "queue",
                spec.name,
                "redrive",
                f"poison messages move to {spec.dlq_name} after {redrive.get('maxReceiveCount')} receives",
            )
        )
    else:
        findings.append(
            _finding(
                "error",
                "queue",
                spec.name,
                "redrive",
                "no redrive policy to its dead-letter queue: a poison message is retried until it expires, then lost"
                if not target
                else f"the redrive policy points at {target}, not {spec.dlq_name}",
                CONVERGE,
            )
        )
    if attributes.get("SqsManagedSseEnabled") == "true" or attributes.get("KmsMasterKeyId"):
        findings.append(_finding("ok", "queue", spec.name, "encryption", "messages are encrypted at rest"))
    else:
        findings.append(
            _finding("warning", "queue", spec.name, "encryption", "messages are not encrypted at rest", CONVERGE)
        )
    if dlq is not None:
        waiting = int(dlq.get("ApproximateNumberOfMessages", "0") or 0)
        if waiting:
            findings.append(
                _finding(
                    "warning",
                    "queue",
                    spec.dlq_name,
                    "dead letters",
                    f"{waiting} message(s) could not be processed",
                    "read them (the services log the reason), fix the cause, then redrive them "
                    f"(aws sqs start-message-move-task --source-arn {dlq.get('QueueArn')})",
                )
            )
    return findings


def _alternatives(pattern: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A pattern as the patterns it ORs (``$or``, as the executor's rule has: windows from the scheduler, requests
    from any source but AWS's); a pattern without ``$or`` is its own single alternative."""
    branches = pattern.get("$or")
    if not isinstance(branches, list):
        return [pattern]
    rest = {k: v for k, v in pattern.items() if k != "$or"}
    return [{**rest, **branch} for branch in branches if isinstance(branch, Mapping)]


def _covers_one(required: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    """Keys (and declared values) of one declared alternative that the deployed one does not let through."""
    missing: dict[str, Any] = {}
    for key, values in required.items():
        if key not in actual:
            continue  # the deployed rule does not filter on it: everything passes
        deployed = actual[key]
        if isinstance(values, list) and isinstance(deployed, list):
            plain = {v for v in deployed if isinstance(v, str)}
            if not all(v in plain for v in values if isinstance(v, str)):
                missing[key] = values
        elif isinstance(values, dict) and isinstance(deployed, dict):
            missing.update({f"{key}.{k}": v for k, v in _covers_one(values, deployed).items()})
    return missing


def _covers(required: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    """What of the declared pattern the deployed one does not let through: every declared alternative must pass
    some deployed alternative."""
    missing: dict[str, Any] = {}
    for need in _alternatives(required):
        gaps = sorted((_covers_one(need, got) for got in _alternatives(actual)), key=len)
        if gaps and gaps[0]:
            missing.update(gaps[0])
    return missing


def rule(
    spec: RuleSpec, description: Mapping[str, Any] | None, targets: Iterable[Mapping[str, Any]], queue_arn: str | None
) -> list[Finding]:
    where = f"{spec.name} (bus {spec.bus})"
    if description is None:
        return [
            _finding("error", "rule", where, "exists", f"the rule is missing: nothing reaches {spec.queue}", CONVERGE)
        ]
    findings: list[Finding] = []
    if description.get("State") != "ENABLED":
        findings.append(
            _finding("error", "rule", where, "enabled", f"the rule is {description.get('State')}", CONVERGE)
        )
    try:
        pattern = json.loads(description.get("EventPattern") or "{}")
    except ValueError:
        pattern = {}
    uncovered = _covers(spec.pattern, pattern)
    if uncovered:
        findings.append(
            _finding(
                "error",
                "rule",
                where,
                "pattern",
                f"the pattern does not let through what {spec.queue} needs ({', '.join(uncovered)}: "
                f"{json.dumps(uncovered)})",
                CONVERGE,
            )
        )
    else:
        findings.append(_finding("ok", "rule", where, "pattern", "routes every event type its queue needs"))
    arns = [t.get("Arn") for t in targets]
    if queue_arn is not None and queue_arn in arns:
        findings.append(_finding("ok", "rule", where, "target", f"delivers to {spec.queue}"))
    else:
        findings.append(_finding("error", "rule", where, "target", f"does not deliver to {spec.queue}", CONVERGE))
    return findings


def presence(area: str, resource: str, exists: bool, what: str) -> Finding:
    if exists:
        return _finding("ok", area, resource, "exists", f"{what} exists")
    return _finding("error", area, resource, "exists", f"{what} does not exist", CONVERGE)


# -- DataSync -----------------------------------------------------------------------------------------------------
def datasync_task(task: Mapping[str, Any]) -> list[Finding]:
    arn = str(task.get("TaskArn", "?"))
    name = f"{task.get('Name') or arn}"
    findings: list[Finding] = []
    status = task.get("Status")
    if status in ("UNAVAILABLE",):
        findings.append(
            _finding(
                "error",
                "datasync",
                name,
                "status",
                "the task is UNAVAILABLE (its agent is offline?)",
                "check the DataSync agent and the source location",
            )
        )
    options = task.get("Options") or {}
    wrong = {k: options.get(k) for k, v in DATASYNC_OPTIONS.items() if options.get(k) != v}
    if wrong:
        findings.append(
            _finding(
                "warning",
                "datasync",
                name,
                "options",
                "options differ from the reference ("
                + ", ".join(f"{k}={v or 'unset'}, expected {DATASYNC_OPTIONS[k]}" for k, v in wrong.items())
                + "); the executor overrides them per execution, executions started elsewhere use them",
                f"aws datasync update-task --task-arn {arn} --options "
                + ",".join(f"{k}={v}" for k, v in DATASYNC_OPTIONS.items()),
            )
        )
    else:
        findings.append(_finding("ok", "datasync", name, "options", "options are the reference's"))
    if not task.get("CloudWatchLogGroupArn"):
        findings.append(
            _finding(
                "warning",
                "datasync",
                name,
                "log group",
                "no CloudWatch log group: the per-file transfer log (LogLevel TRANSFER) is not kept",
                f"aws datasync update-task --task-arn {arn} --cloud-watch-log-group-arn <log group ARN>",
            )
        )
    return findings
