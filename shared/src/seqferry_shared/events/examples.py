"""One realistic example per event; exported next to each JSON Schema and validated by the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from seqferry_shared.events.models import (
    AdhocManifestProcessed,
    Counters,
    ErrorInfo,
    EventDetail,
    Meta,
    RejectedLine,
    RunSummary,
    RunTransferCompleted,
    RunTransferFailed,
    SequencingRunCompleted,
    SequencingRunStarted,
    TransferExecutionStateChanged,
    TransferRequested,
    TransferState,
    TransferWindowOpened,
    Trigger,
)

_AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
_RUN = "251125_A01934_0157_BHJF77DRX5"
_RUN_PATH = f"/sequencers/incoming/novaseq/{_RUN}"


def _meta(n: int, correlation: str = "window-1480412") -> Meta:
    return Meta(
        event_id=UUID(int=n),
        occurred_at=_AT,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        correlation_id=correlation,
    )


def examples() -> dict[type[EventDetail], EventDetail]:
    counters = Counters(
        files_estimated=1204,
        bytes_estimated=9_876_543_210,
        files_transferred=1204,
        bytes_transferred=9_876_543_210,
        files_verified=1204,
        bytes_verified=9_876_543_210,
        files_skipped=310,
    )
    run = RunSummary(
        run_id=_RUN,
        nas_path=_RUN_PATH,
        s3_prefix=f"sequencers/incoming/novaseq/{_RUN}/",
        files_total=1514,
        bytes_total=12_345_678_901,
        files_transferred=1204,
        bytes_transferred=9_876_543_210,
        files_verified=1204,
        markers=["RTAComplete.txt", "SequenceComplete.txt", "CopyComplete.txt"],
    )
    return {
        TransferWindowOpened: TransferWindowOpened(
            meta=_meta(1),
            task="sequencers",
            tick=1480412,
            window_start=datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
            window_end=_AT,
            time_zone="Australia/Sydney",
            includes=[
                "/sequencers/incoming/novaseq/251125*",
                "/sequencers/incoming/novaseq/251124*",
                "/sequencers/incoming/novaseq/251123*",
                "/adhoc",
            ],
        ),
        TransferRequested: TransferRequested(
            meta=_meta(2, "req-7f3a"),
            request_id="req-7f3a",
            includes=[_RUN_PATH, "/sequencers/incoming/miseq/251120_M00630_0101_000000000-A5Y02/InterOp/"],
            reason="re-transfer after NAS outage",
            requested_by="lims@lab.example",
        ),
        TransferExecutionStateChanged: TransferExecutionStateChanged(
            meta=_meta(3),
            execution_id="arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890/execution/exec-0123456789abcdef0",
            backend="datasync",
            task="sequencers",
            state=TransferState.SUCCESS,
            trigger=Trigger(kind="window", id="1480412"),
            includes=["/sequencers/incoming/novaseq/251125*"],
            counters=counters,
            runs=[run],
            started_at=_AT,
        ),
        RunTransferCompleted: RunTransferCompleted(
            meta=_meta(4),
            run_id=_RUN,
            instrument="novaseq6000",
            nas_path=_RUN_PATH,
            s3_uri=f"s3://seqferry-runs/sequencers/incoming/novaseq/{_RUN}/",
            files=1514,
            bytes=12_345_678_901,
            completion_marker="CopyComplete.txt",
            checksum_manifest=f"s3://seqferry-runs/sequencers/incoming/novaseq/{_RUN}.seqferry-manifest.json",
            executions=["exec-0123456789abcdef0"],
        ),
        RunTransferFailed: RunTransferFailed(
            meta=_meta(5),
            run_id=_RUN,
            instrument="novaseq6000",
            nas_path=_RUN_PATH,
            s3_uri=f"s3://seqferry-runs/sequencers/incoming/novaseq/{_RUN}/",
            reason="execution_error",
            error=ErrorInfo(code="VerificationError", message="3 files failed verification"),
            files=1511,
            bytes=12_345_000_000,
            executions=["exec-0123456789abcdef0"],
        ),
        AdhocManifestProcessed: AdhocManifestProcessed(
            meta=_meta(6, "adhoc-rerun-1"),
            bucket="seqferry-runs",
            key="adhoc/rerun-2026-11-25.txt",
            version_id="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
            etag='"9b2cf535f27731c974343645a3985328"',
            accepted=[_RUN_PATH],
            rejected=[RejectedLine(line=3, text="/etc/passwd", reason="path is outside the allowed roots")],
            request_ids=["adhoc-rerun-1-0"],
            result_key="adhoc/results/rerun-2026-11-25.txt.json",
        ),
        SequencingRunStarted: SequencingRunStarted(
            meta=_meta(7), run_id=_RUN, instrument="novaseq6000", path=_RUN_PATH, cycles=318
        ),
        SequencingRunCompleted: SequencingRunCompleted(
            meta=_meta(8),
            run_id=_RUN,
            instrument="novaseq6000",
            path=_RUN_PATH,
            cycles=318,
            cycles_completed=318,
            files=1514,
            bytes=1_234_567,
        ),
    }
