"""Request records in the state table (kind ``ADHOC_REQUEST``: ``adhoc#req#<id>``, listed under ``adhoc-requests``)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from seqferry_adhoc.domain.records import TransferRecord
from seqferry_shared.state.kinds import ADHOC_REQUEST, LISTING_PK, LISTING_SK, TTL, Key, Listing
from seqferry_shared.state.records import Records


def record_key(request_id: str) -> Key:
    return ADHOC_REQUEST.key(request_id)


def request_records(ddb: Any, table: str, *, ttl: timedelta = timedelta(days=90)) -> Records[TransferRecord]:
    """Records are written whole (ids are unique per request, so an overwrite is the same request) and expire."""
    ttl_s = int(ttl.total_seconds())

    def attributes(record: TransferRecord) -> dict[str, Any]:
        return {
            LISTING_PK: {"S": Listing.ADHOC_REQUESTS.value},
            LISTING_SK: {"S": f"{record.created_at.isoformat()}#{record.id}"},
            "status": {"S": record.status},
            TTL: {"N": str(int(time.time()) + ttl_s)},
        }

    return Records(ddb, table, ADHOC_REQUEST, TransferRecord, key=lambda r: record_key(r.id), attributes=attributes)
