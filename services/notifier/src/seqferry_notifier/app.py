"""``create_app(settings)``: the notifier's HTTP app, consumer and background loops, wired in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
from fastapi import FastAPI

from seqferry_notifier import api
from seqferry_notifier.channels import BusChannel, SnsChannel, WebhookChannel
from seqferry_notifier.datasync import DataSyncReader
from seqferry_notifier.handlers import build_router
from seqferry_notifier.metrics import Metrics
from seqferry_notifier.outbox import Channels, Outbox
from seqferry_notifier.service import NotifierService, Stores, utc_now
from seqferry_notifier.settings import NotifierSettings
from seqferry_notifier.storage import RunStorage
from seqferry_notifier.store import execution_records, notice_records, run_records
from seqferry_shared.http import create_http_app
from seqferry_shared.runtime import ServiceRuntime

DESCRIPTION = (
    "Tracks transfer executions and whole runs to completion, emits Run Transfer Completed/Failed, notifies "
    "people (SNS, webhook) and shows a live dashboard at /."
)


async def topic_arn(runtime: ServiceRuntime, settings: NotifierSettings) -> str:
    """The notification topic's ARN: configured, or '<prefix>-notifications' in the caller's account."""
    if settings.sns_topic_arn:
        return settings.sns_topic_arn
    sts = await runtime.client("sts")
    identity = await sts.get_caller_identity()
    partition = str(identity["Arn"]).split(":")[1]
    return f"arn:{partition}:sns:{settings.aws_region}:{identity['Account']}:{runtime.names.topic}"


async def build_service(
    runtime: ServiceRuntime, settings: NotifierSettings, http: aiohttp.ClientSession
) -> tuple[NotifierService, Outbox]:
    names = runtime.names
    ddb = await runtime.client("dynamodb")
    metrics = Metrics.create(runtime.telemetry.meter)
    storage = RunStorage(await runtime.client("s3"), names.bucket, concurrency=settings.manifest_concurrency)
    sns = SnsChannel(await runtime.client("sns"), await topic_arn(runtime, settings))
    url = settings.webhook
    webhook = (
        WebhookChannel(
            http,
            url,
            retries=settings.webhook_retries,
            timeout_s=settings.webhook_timeout_s,
            backoff_s=settings.webhook_backoff_s,
        )
        if url
        else None
    )
    outbox = Outbox(
        notice_records(ddb, names.table),
        Channels(bus=BusChannel(runtime.publisher), sns=sns, webhook=webhook),
        clock=utc_now,
        lease=timedelta(seconds=settings.notice_lease_s),
        send_timeout=timedelta(seconds=settings.notice_send_timeout_s),
        max_attempts=settings.notice_max_attempts,
        retry_base_s=settings.notice_retry_base_s,
        sent=metrics.notifications,
    )
    service = NotifierService(
        settings=settings,
        stores=Stores(
            executions=execution_records(
                ddb, names.table, timedelta(seconds=settings.execution_retention_days * 86400)
            ),
            runs=run_records(ddb, names.table),
        ),
        storage=storage,
        outbox=outbox,
        datasync=DataSyncReader(await runtime.client("datasync")),
        metrics=metrics,
        sequencers=settings.sequencers,
    )
    runtime.add_check("bucket", storage.ping)
    runtime.add_check("topic", sns.ping)
    return service, outbox


def create_app(settings: NotifierSettings) -> FastAPI:
    runtime = ServiceRuntime(settings, "notifier")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http, runtime:
            service, _ = await build_service(runtime, settings, http)
            app.state.service = service
            app.state.dashboard = api.DashboardView(service, settings)
            await runtime.add_consumer(runtime.names.notifier_queue.name, build_router(service))
            poll_every = max(0.2, settings.datasync_poll_interval_s / 2)
            runtime.add_periodic("datasync-poller", service.poll_datasync, every=poll_every)
            runtime.add_periodic("sweeper", service.sweep, every=settings.sweep_interval_s)
            runtime.start()
            yield

    app = create_http_app(
        title="seqferry notifier", settings=settings, runtime=runtime, lifespan=lifespan, description=DESCRIPTION
    )
    app.include_router(api.router)
    return app
