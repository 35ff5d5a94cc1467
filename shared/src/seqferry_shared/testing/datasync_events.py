"""DataSync's own state-change event, as DataSync puts it on the account's default bus (for tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from seqferry_shared.events.aws import DataSyncStateChange


def datasync_state_change(execution_arn: str, state: str) -> dict[str, Any]:
    """A PutEvents entry: ``source: aws.datasync``, the execution ARN in ``resources``, ``detail.State`` only."""
    return {
        "Source": DataSyncStateChange.SOURCE,
        "DetailType": DataSyncStateChange.DETAIL_TYPE,
        "Resources": [execution_arn],
        "Detail": json.dumps({"State": state}),
        "Time": datetime.now(UTC),
    }
