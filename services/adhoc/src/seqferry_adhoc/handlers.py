"""Queue handlers: S3 notifications for ``adhoc/`` arrive here already unwrapped and URL-decoded."""

from __future__ import annotations

from seqferry_adhoc.service import AdhocService
from seqferry_shared.messaging.envelopes import S3ObjectRecord
from seqferry_shared.messaging.routing import MessageContext, Router


def manifest_router(service: AdhocService) -> Router:
    """Route S3 object records to the service; ``s3:TestEvent`` is dropped by the shared consumer."""
    router = Router()

    @router.on_s3()
    async def manifest_created(record: S3ObjectRecord, ctx: MessageContext) -> None:
        await service.on_notification(record)

    return router
