"""``create_app(settings)``: the adhoc HTTP app and lifespan (manifest consumer; routes in api.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from seqferry_adhoc import api
from seqferry_adhoc.bucket import ManifestBucket
from seqferry_adhoc.handlers import manifest_router
from seqferry_adhoc.service import AdhocService, Clock, utc_now
from seqferry_adhoc.settings import AdhocSettings
from seqferry_adhoc.store import request_records
from seqferry_shared.http import create_http_app
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.telemetry import Telemetry

DESCRIPTION = """\
Ad-hoc transfers: re-transfer NAS paths after an outage, a misconfiguration or a run that outlived the window.

Two ways in, one validation: a manifest (one path per line) uploaded to `s3://<bucket>/adhoc/` or dropped in
`/adhoc` on the NAS, and `POST /transfers`. Every path must be absolute, normalized, free of `..`, `|`, backslash
and control characters, with `*` only last, and under the allowed roots. Accepted paths become
`Transfer Requested` events; a manifest's outcome is written to `adhoc/results/<manifest name>.json`.
"""


def create_app(settings: AdhocSettings, *, telemetry: Telemetry | None = None, clock: Clock = utc_now) -> FastAPI:
    runtime = ServiceRuntime(settings, "adhoc", telemetry=telemetry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            bucket = ManifestBucket(await runtime.client("s3"))
            store = request_records(
                await runtime.client("dynamodb"),
                runtime.names.table,
                ttl=timedelta(days=settings.adhoc_record_ttl_days),
            )
            service = AdhocService(
                settings,
                publisher=runtime.publisher,
                store=store,
                bucket=bucket,
                idempotency=runtime.idempotency,
                clock=clock,
            )
            runtime.add_check("bucket", lambda: bucket.ping(runtime.names.bucket))
            if settings.adhoc_consume:
                await runtime.add_consumer(runtime.names.adhoc_queue.name, manifest_router(service))
            app.state.service = service
            runtime.start()
            yield
            app.state.service = None

    # JSON escaping can make a body several times the size of the paths it carries.
    max_body = 6 * settings.adhoc_max_request_bytes + 64 * 1024
    app = create_http_app(
        title="seqferry adhoc",
        description=DESCRIPTION,
        settings=settings,
        runtime=runtime,
        lifespan=lifespan,
        max_body_bytes=max_body,
    )
    app.include_router(api.router)
    return app
