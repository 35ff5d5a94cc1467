"""What people are told: an SNS subject + JSON body and a webhook payload Slack-like tools accept.

Messages carry run ids, execution ids, instruments, counts, sizes, S3 locations and error codes only: never file
names, file contents, sample names or free-text error details (those may contain sample names from paths).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_shared.events.models import RunTransferCompleted, RunTransferFailed

SUBJECT_LIMIT = 100  # SNS refuses longer subjects


class NoticeKind(StrEnum):
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    EXECUTION_FAILED = "execution_failed"


class Notification(BaseModel):
    kind: NoticeKind
    subject: str
    text: str
    fields: dict[str, Any]

    def sns_message(self) -> str:
        return json.dumps({"type": self.kind.value, "text": self.text, **self.fields}, sort_keys=True)

    def webhook_payload(self) -> dict[str, Any]:
        # Slack, Mattermost, Teams workflows and Google Chat read "text"; tools that want data read "seqferry".
        return {"text": slack_escape(self.text), "seqferry": {"type": self.kind.value, **self.fields}}


def slack_escape(text: str) -> str:
    """Slack's mrkdwn escaping (&, <, >): a run id (a NAS folder name) like ``<!channel>`` stays inert text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def _subject(text: str) -> str:
    clean = " ".join(text.split())
    return clean if len(clean) <= SUBJECT_LIMIT else clean[: SUBJECT_LIMIT - 1] + "…"


def run_completed(detail: RunTransferCompleted) -> Notification:
    fields = {
        "run_id": detail.run_id,
        "instrument": detail.instrument,
        "files": detail.files,
        "bytes": detail.bytes,
        "s3_uri": detail.s3_uri,
        "checksum_manifest": detail.checksum_manifest,
        "completion_marker": detail.completion_marker,
        "executions": len(detail.executions),
        "event_id": str(detail.meta.event_id),
        "correlation_id": detail.meta.correlation_id,
    }
    size = human_bytes(detail.bytes)
    return Notification(
        kind=NoticeKind.RUN_COMPLETED,
        subject=_subject(f"seqferry: run {detail.run_id} delivered ({detail.files} files, {size})"),
        text=(
            f"Run {detail.run_id} ({detail.instrument}) is completely in S3: {detail.files:,} files, {size}, "
            f"verified. {detail.s3_uri} (checksum manifest {detail.checksum_manifest})"
        ),
        fields=fields,
    )


_REASONS = {
    "execution_error": "a transfer execution failed",
    "stalled": "no progress before the deadline",
    "sequencing_incomplete": "the instrument ended the run early",
}


def run_failed(detail: RunTransferFailed) -> Notification:
    reason = _REASONS.get(detail.reason, detail.reason)
    code = detail.error.code if detail.error else None
    fields = {
        "run_id": detail.run_id,
        "instrument": detail.instrument,
        "reason": detail.reason,
        "error_code": code,
        "files": detail.files,
        "bytes": detail.bytes,
        "s3_uri": detail.s3_uri,
        "checksum_manifest": detail.checksum_manifest,
        "sequencing_status": detail.sequencing.status if detail.sequencing else None,
        "cycles_planned": detail.sequencing.cycles_planned if detail.sequencing else None,
        "cycles_completed": detail.sequencing.cycles_completed if detail.sequencing else None,
        "executions": detail.executions[-5:],
        "event_id": str(detail.meta.event_id),
        "correlation_id": detail.meta.correlation_id,
    }
    suffix = f" ({code})" if code else ""
    if detail.sequencing is not None:
        done, planned = detail.sequencing.cycles_completed, detail.sequencing.cycles_planned
        cycles = f", {done} of {planned} cycles" if done is not None and planned is not None else ""
        suffix = f" ({detail.sequencing.status}{cycles})"
    return Notification(
        kind=NoticeKind.RUN_FAILED,
        subject=_subject(f"seqferry: run {detail.run_id} transfer failed: {reason}"),
        text=(
            f"Run {detail.run_id} ({detail.instrument}) is not delivered: {reason}{suffix}. "
            f"{detail.files:,} files, {human_bytes(detail.bytes)} in S3 so far."
        ),
        fields=fields,
    )


def execution_failed(record: ExecutionRecord) -> Notification:
    code = record.error.code if record.error else "unknown"
    counters = record.counters
    fields = {
        "execution_id": record.execution_id,
        "task": record.task,
        "backend": record.backend,
        "error_code": code,
        "files_transferred": counters.files_transferred,
        "bytes_transferred": counters.bytes_transferred,
        "files_failed": counters.files_failed,
        "runs": record.run_ids[:20],
        "correlation_id": record.correlation_id,
    }
    return Notification(
        kind=NoticeKind.EXECUTION_FAILED,
        subject=_subject(f"seqferry: transfer execution {record.execution_id} failed ({code})"),
        text=(
            f"Transfer execution {record.execution_id} ({record.backend}) ended in ERROR ({code}) after "
            f"{counters.files_transferred:,} files, {human_bytes(counters.bytes_transferred)}; "
            f"{counters.files_failed:,} file(s) failed; {len(record.run_ids)} run(s) affected."
        ),
        fields=fields,
    )
