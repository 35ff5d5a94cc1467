import json
from datetime import UTC, datetime

from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_notifier.domain.notifications import (
    SUBJECT_LIMIT,
    NoticeKind,
    execution_failed,
    human_bytes,
    run_completed,
    run_failed,
)
from seqferry_shared.events.models import Counters, ErrorInfo, RunTransferCompleted, RunTransferFailed, TransferState

NOW = datetime(2025, 11, 25, tzinfo=UTC)
SECRET = "PATIENT_SAMPLE_42"  # what must never leak into a message


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(999) == "999 B"
    assert human_bytes(12_345_678) == "12.3 MB"
    assert human_bytes(5_200_000_000_000_000) == "5200.0 TB"


def test_run_completed_message() -> None:
    detail = RunTransferCompleted(
        run_id="251125_A01934_0157_BHJF77DRX5",
        instrument="novaseq6000",
        nas_path="/sequencers/incoming/novaseq/251125_A01934_0157_BHJF77DRX5",
        s3_uri="s3://b/sequencers/incoming/novaseq/251125_A01934_0157_BHJF77DRX5/",
        files=1514,
        bytes=12_345_678_901,
        completion_marker="CopyComplete.txt",
        checksum_manifest="s3://b/sequencers/incoming/novaseq/251125_A01934_0157_BHJF77DRX5.seqferry-manifest.json",
        executions=["exec-1", "exec-2"],
    )
    n = run_completed(detail)
    assert n.kind == NoticeKind.RUN_COMPLETED
    assert n.subject == "seqferry: run 251125_A01934_0157_BHJF77DRX5 delivered (1514 files, 12.3 GB)"
    body = json.loads(n.sns_message())
    assert body["type"] == "run_completed"
    assert body["files"] == 1514
    assert body["executions"] == 2
    payload = n.webhook_payload()
    assert "1,514 files" in payload["text"]
    assert payload["seqferry"]["run_id"] == detail.run_id


def test_run_failed_carries_the_code_never_the_error_text() -> None:
    detail = RunTransferFailed(
        run_id="R1",
        instrument="miseq",
        nas_path="/n/R1",
        s3_uri="s3://b/n/R1/",
        reason="execution_error",
        error=ErrorInfo(code="VerificationFailed", message=f"/n/R1/{SECRET}_R1.fastq.gz checksum mismatch"),
        files=3,
        bytes=30,
        executions=["exec-9"],
    )
    n = run_failed(detail)
    everything = n.subject + n.text + n.sns_message() + json.dumps(n.webhook_payload())
    assert SECRET not in everything
    assert "VerificationFailed" in n.text
    assert json.loads(n.sns_message())["reason"] == "execution_error"


def test_execution_failed_message_and_subject_limit() -> None:
    record = ExecutionRecord(
        execution_id="exec-" + "0" * 120,
        backend="local",
        task="sequencers",
        state=TransferState.ERROR,
        counters=Counters(files_transferred=5, bytes_transferred=5000, files_failed=2),
        error=ErrorInfo(code="SourceChanged", message=f"{SECRET}.bam changed while reading"),
        run_ids=["R1", "R2"],
        first_seen_at=NOW,
        updated_at=NOW,
    )
    n = execution_failed(record)
    assert len(n.subject) <= SUBJECT_LIMIT
    assert "\n" not in n.subject
    assert SECRET not in n.text + n.sns_message()
    assert json.loads(n.sns_message())["runs"] == ["R1", "R2"]
    assert "2 run(s) affected" in n.text


def test_a_run_id_cannot_mention_a_channel_in_the_webhook_text() -> None:
    # GIVEN a run folder named to ping everyone in Slack (folder names come from whoever can write to the NAS)
    hostile = "<!channel> 251125_M00123_0001_000000000-ABCDE <https://evil.example|click> & co"
    detail = RunTransferFailed(
        run_id=hostile,
        instrument="miseq",
        nas_path=f"/sequencers/incoming/miseq/{hostile}",
        s3_uri=f"s3://b/sequencers/incoming/miseq/{hostile}/",
        reason="stalled",
    )
    # WHEN the webhook payload is built THEN Slack's control sequences are escaped in the text
    text = run_failed(detail).webhook_payload()["text"]
    assert "<" not in text
    assert ">" not in text
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example|click&gt; &amp; co" in text
