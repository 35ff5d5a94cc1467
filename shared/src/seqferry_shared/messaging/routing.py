"""Routing: which typed handler an envelope goes to, and whether its source may be trusted.

Handlers are typed async functions registered on a :class:`Router`; they receive a model and a
:class:`MessageContext`, never an envelope, a dict or a receipt handle:

- ``@router.on(Model)`` — one of our event details (:mod:`seqferry_shared.events.models`), by detail-type, from a
  source the model :meth:`~seqferry_shared.events.models.EventDetail.trusts`; idempotent per ``meta.event_id``;
- ``@router.on_aws(Model)`` — an AWS service's own event (:mod:`seqferry_shared.events.aws`), by source and
  detail-type;
- ``@router.on_s3()`` — S3 object records (keys URL-decoded).

What no route accepts is rejected (:class:`RejectError`): it goes to the dead-letter queue, never to a handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from pydantic import ValidationError

from seqferry_shared.errors import RejectError
from seqferry_shared.events.aws import AwsEvent
from seqferry_shared.events.models import EventDetail
from seqferry_shared.messaging.envelopes import EventBridgeEvent, S3ObjectRecord

M = TypeVar("M", bound=EventDetail)
A = TypeVar("A", bound=AwsEvent)
P = TypeVar("P")


class UntrustedSourceError(RejectError):
    """The event's type may not come from its source (only the rules keep such events out of the queue)."""


class NoRouteError(RejectError):
    """Nothing here handles this message."""


class InvalidMessageError(RejectError):
    """The payload does not validate against its model; the message names the invalid fields."""


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a handler may know about the message beyond its payload."""

    message_id: str
    receive_count: int
    queue_name: str
    source: str = ""  # the EventBridge source ("" for S3 records)


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """An event of a routed detail-type whose detail does not validate: what is known of it, and why."""

    event_id: str  # EventBridge's id: the detail has no usable meta.event_id
    source: str
    detail_type: str
    detail: dict[str, Any]
    reason: str


Handler: TypeAlias = Callable[[P, MessageContext], Awaitable[None]]
InvalidHandler = Callable[[InvalidEvent, MessageContext], Awaitable[None]]
"""Records an invalid event (for example as an ERROR event); returning means it was recorded."""


@dataclass(frozen=True, slots=True)
class DetailRoute:
    model: type[EventDetail]
    handler: Handler[Any]
    idempotent: bool
    on_invalid: InvalidHandler | None = None


@dataclass(frozen=True, slots=True)
class AwsRoute:
    model: type[AwsEvent]
    handler: Handler[Any]

    def parse(self, event: EventBridgeEvent) -> AwsEvent:
        try:
            return self.model.model_validate(event.as_json())
        except ValidationError as exc:
            raise InvalidMessageError(f"invalid {event.detail_type!r} event: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


class Router:
    """Maps envelopes to handlers: our events by detail-type (from a source the model trusts), AWS events by
    source and detail-type, S3 records."""

    def __init__(self) -> None:
        self._details: dict[str, DetailRoute] = {}
        self._aws: dict[tuple[str, str], AwsRoute] = {}
        self._s3: Handler[S3ObjectRecord] | None = None

    def on(
        self, model: type[M], *, idempotent: bool = True, on_invalid: InvalidHandler | None = None
    ) -> Callable[[Handler[M]], Handler[M]]:
        """Register a handler for ``model``'s detail-type.

        A detail that fails validation goes to the DLQ, unless ``on_invalid`` is given: then that hook records the
        rejection and the message is deleted once it returns.
        """

        def register(handler: Handler[M]) -> Handler[M]:
            self._details[model.DETAIL_TYPE] = DetailRoute(model, handler, idempotent, on_invalid)
            return handler

        return register

    def on_aws(self, model: type[A]) -> Callable[[Handler[A]], Handler[A]]:
        """Register a handler for an AWS service's event, typed by ``model``."""

        def register(handler: Handler[A]) -> Handler[A]:
            self._aws[(model.SOURCE, model.DETAIL_TYPE)] = AwsRoute(model, handler)
            return handler

        return register

    def on_s3(self) -> Callable[[Handler[S3ObjectRecord]], Handler[S3ObjectRecord]]:
        def register(handler: Handler[S3ObjectRecord]) -> Handler[S3ObjectRecord]:
            self._s3 = handler
            return handler

        return register

    def route(self, event: EventBridgeEvent) -> DetailRoute | AwsRoute:
        """The route for ``event``; :class:`RejectError` when its source is not trusted or nothing handles it."""
        detail_route = self._details.get(event.detail_type)
        if detail_route is not None:
            if not detail_route.model.trusts(event.source):
                # The rules only deliver trusted sources; whatever else reaches the queue is kept in the DLQ.
                raise UntrustedSourceError(
                    f"{event.detail_type!r} from source {event.source!r} is not trusted; not handled"
                )
            return detail_route
        aws_route = self._aws.get((event.source, event.detail_type))
        if aws_route is None:
            raise NoRouteError(f"no handler for detail-type {event.detail_type!r} from {event.source!r}")
        return aws_route

    def s3_handler(self) -> Handler[S3ObjectRecord]:
        if self._s3 is None:
            raise NoRouteError("S3 notification received but no S3 handler is registered")
        return self._s3
