"""Reading manifests from, and writing results to, the bucket — with a size limit that holds before any byte."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seqferry_adhoc.domain.requests import ManifestRef
from seqferry_adhoc.errors import ManifestGoneError, ManifestReadError, ManifestSupersededError

_GONE = {"NoSuchKey", "NoSuchVersion", "404"}
_CHANGED = {"PreconditionFailed", "412"}
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class ManifestBytes:
    data: bytes | None
    """The content, or None when the object is larger than the limit (it is then not read)."""
    size: int


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ManifestBucket:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    async def read(self, ref: ManifestRef, max_bytes: int) -> ManifestBytes:
        """Read exactly the announced version (or, unversioned, the announced ETag) of a manifest.

        Raises ManifestGoneError when that version no longer exists and ManifestReadError on any other failure.
        """
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        elif ref.etag:
            kwargs["IfMatch"] = ref.etag if ref.etag.startswith('"') else f'"{ref.etag}"'
        try:
            response = await self._s3.get_object(**kwargs)
        except ClientError as exc:
            code = _code(exc)
            if code in _GONE:
                raise ManifestGoneError(f"{ref.uri} ({ref.version_id or ref.etag}) no longer exists") from exc
            if code in _CHANGED:
                raise ManifestSupersededError(f"{ref.uri} was replaced before it was read") from exc
            raise ManifestReadError(f"cannot read {ref.uri}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise ManifestReadError(f"cannot read {ref.uri}: {exc}") from exc
        size = int(response.get("ContentLength") or 0)
        async with response["Body"] as body:
            if size > max_bytes:
                return ManifestBytes(data=None, size=size)
            try:
                data = await _read_at_most(body, max_bytes)
            except (BotoCoreError, OSError) as exc:
                raise ManifestReadError(f"reading {ref.uri} failed: {exc}") from exc
        if data is None:
            return ManifestBytes(data=None, size=max(size, max_bytes + 1))
        return ManifestBytes(data=data, size=len(data))

    async def write_result(self, bucket: str, key: str, body: bytes) -> None:
        await self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    async def ping(self, bucket: str) -> None:
        await self._s3.head_bucket(Bucket=bucket)


async def _read_at_most(body: Any, limit: int) -> bytes | None:
    """The whole stream, or None as soon as it proves longer than ``limit`` (a lying Content-Length included)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await body.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
