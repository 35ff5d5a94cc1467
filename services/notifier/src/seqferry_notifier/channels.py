"""Delivery channels: the seqferry bus, the SNS topic and an optional webhook."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from seqferry_notifier.domain.notifications import Notification
from seqferry_shared.events.models import BY_DETAIL_TYPE
from seqferry_shared.messaging.publisher import EventPublisher, PublishError

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A channel could not take the message now; retry later."""


class PermanentDeliveryError(DeliveryError):
    """A channel refuses the message for good (e.g. the webhook answers 404); do not retry."""


class BusChannel:
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def send(self, event_type: str, event: dict[str, Any]) -> None:
        model = BY_DETAIL_TYPE.get(event_type)
        if model is None:
            raise PermanentDeliveryError(f"unknown event type {event_type!r}")
        detail = model.model_validate(event)
        try:
            await self._publisher.publish(detail)
        except (PublishError, ClientError, BotoCoreError) as exc:
            raise DeliveryError(f"bus: {exc}") from exc


class SnsChannel:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    async def ping(self) -> None:
        await self._sns.get_topic_attributes(TopicArn=self.topic_arn)

    async def send(self, notification: Notification) -> None:
        try:
            await self._sns.publish(
                TopicArn=self.topic_arn,
                Subject=notification.subject,
                Message=notification.sns_message(),
                MessageAttributes={"type": {"DataType": "String", "StringValue": notification.kind.value}},
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("InvalidParameter", "InvalidParameterValue"):
                raise PermanentDeliveryError(f"sns: {code}") from exc
            raise DeliveryError(f"sns: {code or exc}") from exc
        except BotoCoreError as exc:
            raise DeliveryError(f"sns: {exc}") from exc


class WebhookChannel:
    """POSTs ``{"text": ..., "seqferry": {...}}``; retries 5xx, 408/425/429, timeouts and connection errors."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        retries: int = 3,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
    ) -> None:
        self._session = session
        self._url = url
        self._retries = retries
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff_s = backoff_s

    async def send(self, notification: Notification) -> None:
        payload = notification.webhook_payload()
        problem = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                async with self._session.post(self._url, json=payload, timeout=self._timeout) as response:
                    if 200 <= response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
                    if 400 <= response.status < 500 and response.status not in _RETRYABLE_STATUS:
                        raise PermanentDeliveryError(f"webhook refused the message: {problem}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("webhook attempt %d/%d failed: %s", attempt + 1, self._retries + 1, problem)
        raise DeliveryError(f"webhook: {problem} after {self._retries + 1} attempt(s)")
