"""The record of one ad-hoc request, as ``GET /transfers/{id}`` shows it and the state table keeps it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RequestStatus = Literal["pending", "requested", "failed"]
# The record lives in one DynamoDB item (400 KB at most); a manifest's full list is in its result object.
RECORD_INCLUDES_BUDGET = 300_000


class ManifestSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    result_key: str = Field(description="Key of the result object listing every accepted and rejected line.")


class TransferRecord(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "r-5f0c3b9e8d7a4c1b9a2e6f3d4c5b6a79",
                    "source": "api",
                    "status": "requested",
                    "created_at": "2024-11-25T09:14:03.120000Z",
                    "updated_at": "2024-11-25T09:14:03.410000Z",
                    "reason": "re-transfer after the NAS outage of 24 November",
                    "requested_by": "lab-ops",
                    "includes": ["/sequencers/incoming/miseq/241125_M00123_0001_000000000-ABCDE"],
                    "include_count": 1,
                    "includes_complete": True,
                    "request_ids": ["r-5f0c3b9e8d7a4c1b9a2e6f3d4c5b6a79"],
                    "manifest": None,
                    "rejected_count": 0,
                    "error": None,
                }
            ]
        },
    )

    id: str = Field(description="Ad-hoc request id (`r-...` from the API, `m-...` from a manifest).")
    source: Literal["api", "manifest"]
    status: RequestStatus = Field(
        description="pending: being published; requested: Transfer Requested is on the bus; failed: it is not."
    )
    created_at: datetime
    updated_at: datetime
    reason: str
    requested_by: str
    includes: list[str] = Field(description="Accepted include patterns (cut when very long, see includes_complete).")
    include_count: int
    includes_complete: bool = Field(description="False when `includes` was cut; the manifest result has them all.")
    request_ids: list[str] = Field(description="Ids of the Transfer Requested events (one per filter-sized part).")
    manifest: ManifestSource | None = None
    rejected_count: int = Field(default=0, description="Rejected manifest lines (see the result object).")
    error: str | None = Field(default=None, description="Why the request could not be published, if it failed.")


def bounded_includes(patterns: Sequence[str], budget: int = RECORD_INCLUDES_BUDGET) -> tuple[list[str], bool]:
    """The longest prefix of ``patterns`` whose JSON fits ``budget`` bytes, and whether that is all of them."""
    kept: list[str] = []
    used = 0
    for pattern in patterns:
        cost = len(json.dumps(pattern, ensure_ascii=False).encode()) + 2
        if used + cost > budget:
            return kept, False
        kept.append(pattern)
        used += cost
    return kept, True
