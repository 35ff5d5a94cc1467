"""Notifier records in the shared state table, typed and versioned (:class:`seqferry_shared.state.records.Records`).

Kinds (:mod:`seqferry_shared.state.kinds`): ``NOTIFIER_EXECUTION`` ``nexec#<execution id>`` / ``execution`` (listed
under ``notifier#executions``), ``NOTIFIER_RUN`` ``run#<run id>`` / ``run`` (``notifier#runs``) and
``NOTIFIER_NOTICE`` ``notice#…`` in the partition of the run or execution it announces (``notifier#notices#pending``
until delivered, then ``notifier#notices``). Beside the document, each item carries the top-level attributes its
listing and the sweeps' filters need.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from seqferry_notifier.domain.executions import ExecutionRecord
from seqferry_notifier.domain.notices import Notice
from seqferry_notifier.domain.runs import RunRecord
from seqferry_shared.state.kinds import (
    LISTING_PK,
    LISTING_SK,
    NOTIFIER_EXECUTION,
    NOTIFIER_NOTICE,
    NOTIFIER_RUN,
    TTL,
    Key,
    Listing,
)
from seqferry_shared.state.records import Records


def iso(moment: datetime) -> str:
    """Sortable UTC timestamp used in index sort keys."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


def _bool(value: bool) -> dict[str, bool]:
    return {"BOOL": value}


def execution_record_key(execution_id: str) -> Key:
    return NOTIFIER_EXECUTION.key(execution_id)


def run_key(run_id: str) -> Key:
    return NOTIFIER_RUN.key(run_id)


def notice_key(notice: Notice) -> Key:
    return Key(notice.pk, notice.sk)


def execution_records(ddb: Any, table: str, retention: timedelta) -> Records[ExecutionRecord]:
    def attributes(record: ExecutionRecord) -> dict[str, Any]:
        described = record.reconcile.last_described_at
        return {
            LISTING_PK: _s(Listing.NOTIFIER_EXECUTIONS.value),
            LISTING_SK: _s(f"{iso(record.updated_at)}#{record.execution_id}"),
            "terminal": _bool(record.terminal),
            "pollable": _bool(record.pollable),
            "polled_at": _n(described.timestamp() if described else 0.0),
            TTL: _n(int((record.updated_at + retention).timestamp())),
        }

    return Records(
        ddb,
        table,
        NOTIFIER_EXECUTION,
        ExecutionRecord,
        key=lambda r: execution_record_key(r.execution_id),
        attributes=attributes,
    )


def run_records(ddb: Any, table: str) -> Records[RunRecord]:
    def attributes(record: RunRecord) -> dict[str, Any]:
        return {
            LISTING_PK: _s(Listing.NOTIFIER_RUNS.value),
            LISTING_SK: _s(f"{iso(record.last_progress_at)}#{record.run_id}"),
            # settled: delivered whole, or reported incomplete; neither is watched for stalls any more
            "delivered": _bool(record.completion is not None or record.incomplete is not None),
            "stalled": _bool(record.stalled_since is not None),
            "run_status": _s(record.status.value),
        }

    return Records(ddb, table, NOTIFIER_RUN, RunRecord, key=lambda r: run_key(r.run_id), attributes=attributes)


def notice_records(ddb: Any, table: str) -> Records[Notice]:
    def attributes(notice: Notice) -> dict[str, Any]:
        listing = Listing.NOTIFIER_NOTICES if notice.done else Listing.NOTIFIER_NOTICES_PENDING
        return {
            LISTING_PK: _s(listing.value),
            LISTING_SK: _s(f"{iso(notice.created_at)}#{notice.pk}#{notice.sk}"),
            "lease_until": _n(notice.lease_until.timestamp()),
        }

    return Records(ddb, table, NOTIFIER_NOTICE, Notice, key=notice_key, attributes=attributes)
