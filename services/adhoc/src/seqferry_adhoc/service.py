"""The adhoc service's use cases: a manifest announced by S3, and a request posted over HTTP.

Both end in ``Transfer Requested`` events on the bus and a request record in the state table. Nothing here
parses transport envelopes or HTTP; that happens in :mod:`seqferry_adhoc.handlers` and :mod:`seqferry_adhoc.api`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from seqferry_adhoc.bucket import ManifestBucket
from seqferry_adhoc.domain.manifest import parse_manifest, too_large, validate_paths
from seqferry_adhoc.domain.records import ManifestSource, TransferRecord, bounded_includes
from seqferry_adhoc.domain.requests import (
    ManifestRef,
    ManifestResult,
    api_request_id,
    build_requests,
    build_result,
    idempotency_key,
    is_manifest_key,
    manifest_request_id,
    manifest_requests,
    processed_event,
)
from seqferry_adhoc.errors import AdhocError, ForeignBucketError, ManifestSupersededError, RequestNotPublishedError
from seqferry_adhoc.settings import AdhocSettings
from seqferry_adhoc.store import record_key
from seqferry_shared.events.models import TransferRequested
from seqferry_shared.idempotency import IdempotencyStore
from seqferry_shared.messaging.envelopes import S3ObjectRecord
from seqferry_shared.messaging.publisher import EventPublisher, PublishError
from seqferry_shared.patterns import escape
from seqferry_shared.resources import manifest_result_key
from seqferry_shared.state.records import Records

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PathError:
    index: int
    path: str
    reason: str


class InvalidRequestError(AdhocError):
    """An API request that fails validation; nothing was published."""

    def __init__(self, message: str, errors: Sequence[PathError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


class AdhocService:
    def __init__(
        self,
        settings: AdhocSettings,
        *,
        publisher: EventPublisher,
        store: Records[TransferRecord],
        bucket: ManifestBucket,
        idempotency: IdempotencyStore,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._bucket_name = settings.names.bucket
        self._roots = settings.allowed_roots
        self._limits = settings.manifest_limits
        self._publisher = publisher
        self._store = store
        self._bucket = bucket
        self._idempotency = idempotency
        self._clock = clock

    @property
    def roots(self) -> list[str]:
        return list(self._roots)

    # -- HTTP ------------------------------------------------------------------------------------------------
    async def submit(self, paths: Sequence[str], *, reason: str, requested_by: str) -> TransferRecord:
        """Validate and publish an API request.

        Raises InvalidRequestError (nothing published) or RequestNotPublishedError (recorded as failed).
        """
        if len(paths) > self._limits.max_lines:
            raise InvalidRequestError(f"more than {self._limits.max_lines} paths in one request")
        size = sum(len(p.encode("utf-8", errors="surrogatepass")) for p in paths)
        if size > self._settings.adhoc_max_request_bytes:
            raise InvalidRequestError(
                f"paths total {size} bytes, more than the limit of {self._settings.adhoc_max_request_bytes} bytes"
            )
        accepted, errors = validate_paths(paths, self._roots, self._limits)
        if errors:
            raise InvalidRequestError(
                f"{len(errors)} of {len(paths)} path(s) rejected; nothing was requested",
                [PathError(index, shown, reason) for index, shown, reason in errors],
            )
        request_id = api_request_id()
        requests = build_requests(
            request_id, accepted, reason=reason, requested_by=requested_by, task=self._settings.adhoc_task
        )
        now = self._clock()
        record = TransferRecord(
            id=request_id,
            source="api",
            status="pending",
            created_at=now,
            updated_at=now,
            reason=reason,
            requested_by=requested_by,
            includes=accepted,
            include_count=len(accepted),
            includes_complete=True,
            request_ids=[r.request_id for r in requests],
        )
        try:
            await self._store.put(record)
        except (ClientError, BotoCoreError) as exc:
            raise RequestNotPublishedError(f"request {request_id} could not be recorded: {exc}", request_id) from exc
        try:
            await self._publisher.publish(*requests)
        except (PublishError, ClientError, BotoCoreError, ValueError) as exc:
            failed = record.model_copy(
                update={"status": "failed", "updated_at": self._clock(), "error": f"{type(exc).__name__}: {exc}"}
            )
            await self._store.put(failed)
            raise RequestNotPublishedError(f"request {request_id} could not be published: {exc}", request_id) from exc
        requested = record.model_copy(update={"status": "requested", "updated_at": self._clock()})
        try:
            await self._store.put(requested)
        except (ClientError, BotoCoreError):
            # The events are on the bus: answering with an error would invite a duplicate request.
            log.warning("request %s published but its record still says pending", request_id, exc_info=True)
        log.info("request %s: %d pattern(s) requested by the API", request_id, len(accepted))
        return requested

    async def get(self, request_id: str) -> TransferRecord | None:
        return await self._store.get(record_key(request_id))

    # -- manifests -------------------------------------------------------------------------------------------
    async def on_notification(self, record: S3ObjectRecord) -> ManifestResult | None:
        """Process one S3 notification record at most once per object version; None when it is not a manifest."""
        if not record.event_name.startswith("ObjectCreated"):
            log.info("ignoring %s for %s", record.event_name, escape(record.key))
            return None
        if not is_manifest_key(record.key):
            log.debug("ignoring %s: not a manifest key", escape(record.key))
            return None
        if record.bucket != self._bucket_name:
            raise ForeignBucketError(
                f"notification for bucket {escape(record.bucket)!r}; only {self._bucket_name!r} is read"
            )
        ref = ManifestRef(
            bucket=record.bucket,
            key=record.key,
            version_id=record.version_id,
            etag=record.etag,
            size=record.size,
            sequencer=record.sequencer or record.event_time,
        )
        async with self._idempotency.guard(idempotency_key(ref)) as claim:
            if claim.done:
                log.info(
                    "manifest %s (%s) already processed; duplicate notification dropped",
                    escape(ref.uri),
                    ref.version_id or ref.etag,
                )
                return None
            try:
                return await self.process_manifest(ref)
            except ManifestSupersededError as exc:
                log.info("%s", exc)
                return None

    async def process_manifest(self, ref: ManifestRef) -> ManifestResult:
        """Read, validate, request, record, report. Safe to repeat: every id derives from the manifest version."""
        content = await self._bucket.read(ref, self._limits.max_bytes)
        ref = replace(ref, size=content.size)
        if content.data is None:
            parsed = too_large(content.size, self._limits)
        else:
            parsed = parse_manifest(content.data, self._roots, self._limits)
        requests = manifest_requests(ref, parsed, task=self._settings.adhoc_task)
        if requests and not await self._already_requested(ref, requests):
            await self._publisher.publish(*requests)
            await self._store.put(self._manifest_record(ref, requests, rejected=len(parsed.rejected)))
        result = build_result(ref, parsed, requests, roots=self._roots, limits=self._limits, processed_at=self._clock())
        await self._bucket.write_result(ref.bucket, manifest_result_key(ref.key), result.to_json())
        await self._publisher.publish(processed_event(ref, result))
        log.info(
            "manifest %s (%s): %s, %d accepted, %d rejected, %d duplicate(s), request %s",
            escape(ref.uri),
            ref.version_id or ref.etag,
            result.status,
            len(result.accepted),
            len(result.rejected),
            len(result.duplicates),
            result.request_id or "-",
        )
        return result

    async def _already_requested(self, ref: ManifestRef, requests: Sequence[TransferRequested]) -> bool:
        """Whether an earlier attempt at this manifest version published its requests (its record says so).

        A step after the publish (the result object, the report event, completing the claim) can fail; the claim
        is then released and the notification redelivered. The record, written right after the publish, is what
        keeps the redelivery from putting the same requests on the bus again (a consumer counting events would
        count them twice).
        """
        recorded = await self._store.get(record_key(manifest_request_id(ref)))
        if recorded is None or recorded.status != "requested":
            return False
        if recorded.request_ids != [r.request_id for r in requests]:
            return False
        log.info("manifest %s (%s): requests already published", escape(ref.uri), ref.version_id or ref.etag)
        return True

    def _manifest_record(
        self, ref: ManifestRef, requests: Sequence[TransferRequested], *, rejected: int
    ) -> TransferRecord:
        patterns = [p for r in requests for p in r.includes]
        includes, complete = bounded_includes(patterns)
        now = self._clock()
        return TransferRecord(
            id=manifest_request_id(ref),
            source="manifest",
            status="requested",
            created_at=now,
            updated_at=now,
            reason=requests[0].reason,
            requested_by=requests[0].requested_by,
            includes=includes,
            include_count=len(patterns),
            includes_complete=complete,
            request_ids=[r.request_id for r in requests],
            manifest=ManifestSource(
                bucket=ref.bucket,
                key=ref.key,
                version_id=ref.version_id,
                etag=ref.etag,
                result_key=manifest_result_key(ref.key),
            ),
            rejected_count=rejected,
        )
