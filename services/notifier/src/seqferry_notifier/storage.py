"""What the notifier reads and writes in the run bucket: listings, RunInfo.xml, object checksums, manifests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import ClientError

from seqferry_notifier.domain.manifest import ManifestEntry, entry_from_attributes, entry_from_head
from seqferry_notifier.domain.runs import ObjectInfo

log = logging.getLogger(__name__)

_MISSING = ("NoSuchKey", "404", "NotFound")
# Servers without GetObjectAttributes answer with one of these; HeadObject gives the same facts.
_UNSUPPORTED = ("NotImplemented", "MethodNotAllowed", "InvalidRequest", "501", "405")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class RunStorage:
    def __init__(self, s3: Any, bucket: str, *, concurrency: int = 16) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._concurrency = concurrency

    async def ping(self) -> None:
        await self._s3.head_bucket(Bucket=self.bucket)

    async def list_run(self, prefix: str) -> list[ObjectInfo]:
        """Every object under the run's prefix (ListObjectsV2, all pages)."""
        objects: list[ObjectInfo] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            objects.extend(
                ObjectInfo(
                    key=o["Key"],
                    size=int(o["Size"]),
                    etag=str(o.get("ETag", "")).strip('"') or None,
                    last_modified=o.get("LastModified"),
                )
                for o in page.get("Contents", [])
            )
        return objects

    async def folders(self, prefix: str) -> list[str]:
        """The common prefixes one level below ``prefix`` (ListObjectsV2 with delimiter '/', all pages)."""
        found: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found.extend(str(p["Prefix"]) for p in page.get("CommonPrefixes", []))
        return found

    async def read(self, key: str, *, max_bytes: int) -> bytes | None:
        """An object's body (None when absent); refuses bodies larger than ``max_bytes``."""
        try:
            response = await self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            if _code(exc) == "InvalidRange":  # an empty object has no byte 0
                return b""
            raise
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data

    async def _entry(self, key: str, slots: asyncio.Semaphore) -> ManifestEntry:
        async with slots:
            try:
                response = await self._s3.get_object_attributes(
                    Bucket=self.bucket, Key=key, ObjectAttributes=["ETag", "Checksum", "ObjectSize"]
                )
                return entry_from_attributes(key, response)
            except ClientError as exc:
                if _code(exc) not in _UNSUPPORTED:
                    raise
                log.debug("GetObjectAttributes unsupported (%s); using HeadObject", _code(exc))
            head = await self._s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            return entry_from_head(key, head)

    async def manifest_entries(self, keys: list[str]) -> list[ManifestEntry]:
        """Size, checksum, ETag and version of each object, in parallel."""
        slots = asyncio.Semaphore(self._concurrency)
        return list(await asyncio.gather(*(self._entry(key, slots) for key in keys)))

    async def put_json(self, key: str, body: bytes) -> str | None:
        response = await self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", ChecksumAlgorithm="SHA256"
        )
        version: str | None = response.get("VersionId")
        return version
