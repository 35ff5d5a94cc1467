"""Lifecycle classes for objects DataSync wrote: tag them after each execution.

S3 lifecycle rules cannot match file suffixes, so they match the ``seqferry-class`` object tag. The local engine
sets it with every upload; DataSync copying from NFS sets no tags. When a DataSync execution ends, the executor
lists what the execution's include patterns reach and tags each object modified since the execution started with
its class (``object_class``): an object DataSync wrote, or rewrote because it changed, gets its rule like any other.
Tagging is idempotent, so an executor that restarts and classifies the same execution again does no harm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from seqferry_shared.patterns import Matcher
from seqferry_shared.resources import STORAGE_CLASS_TAG, object_class

log = logging.getLogger(__name__)

# S3 stamps LastModified with its own clock; DataSync's StartTime comes from another: allow for skew.
CLOCK_MARGIN = timedelta(minutes=1)
_GONE = ("NoSuchKey", "404", "NotFound")


def listing_prefixes(includes: Sequence[str]) -> list[str]:
    """Key prefixes to list for include patterns (``/seq/x/2511*`` -> ``seq/x/2511``), without redundant ones."""
    prefixes = sorted({pattern.rstrip("*").lstrip("/") for pattern in includes})
    kept: list[str] = []
    for prefix in prefixes:
        if not any(prefix.startswith(other) for other in kept):
            kept.append(prefix)
    return kept


async def classify_written(
    s3: Any,
    bucket: str,
    includes: Sequence[str],
    *,
    since: datetime,
    adhoc_prefixes: tuple[str, ...],
    concurrency: int = 32,
) -> int:
    """Tag every object under ``includes`` modified at or after ``since``; returns how many were tagged."""
    matcher = Matcher.of(includes)
    threshold = since - CLOCK_MARGIN
    slots = asyncio.Semaphore(concurrency)
    tagged = 0

    async def tag(key: str) -> None:
        nonlocal tagged
        async with slots:
            try:
                await s3.put_object_tagging(
                    Bucket=bucket,
                    Key=key,
                    Tagging={"TagSet": [{"Key": STORAGE_CLASS_TAG, "Value": object_class(key, adhoc_prefixes)}]},
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _GONE:
                    return  # deleted since the listing: nothing to classify
                raise
            tagged += 1

    paginator = s3.get_paginator("list_objects_v2")
    for prefix in listing_prefixes(includes):
        keys = []
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                if obj["LastModified"] >= threshold and matcher.matches("/" + obj["Key"]):
                    keys.append(obj["Key"])
        async with asyncio.TaskGroup() as group:
            for key in keys:
                group.create_task(tag(key))
    log.info("classified %d object(s) written since %s under %d prefix(es)", tagged, since.isoformat(), len(includes))
    return tagged
