"""Routing without I/O: typed AWS events, trusted sources, what no route accepts, the outcome family."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seqferry_shared.errors import IgnoreError, RejectError, RetryLaterError, SeqferryError
from seqferry_shared.events.aws import DataSyncStateChange
from seqferry_shared.events.models import TransferRequested, TransferWindowOpened
from seqferry_shared.idempotency import IdempotencyInProgressError
from seqferry_shared.messaging.envelopes import EnvelopeError, EventBridgeEvent, parse_body
from seqferry_shared.messaging.publisher import EntryTooLargeError, PublishError
from seqferry_shared.messaging.routing import AwsRoute, DetailRoute, MessageContext, Router
from seqferry_shared.patterns import PatternError
from seqferry_shared.sequencers import UnknownInstrumentError
from seqferry_shared.state.records import StoreConflictError

EVENTS = Path(__file__).parent.parent / "events"
TASK = "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890"
ARN = f"{TASK}/execution/exec-0123456789abcdef0"


def event(
    source: str, detail_type: str, detail: dict[str, object], resources: list[str] | None = None
) -> EventBridgeEvent:
    return EventBridgeEvent("e1", detail_type, source, "2025-11-25T09:41:07Z", detail, resources or [])


def router_with_routes() -> tuple[Router, list[object]]:
    router, seen = Router(), []

    @router.on(TransferWindowOpened)
    async def window(detail: TransferWindowOpened, ctx: MessageContext) -> None:
        seen.append(detail)

    @router.on(TransferRequested)
    async def requested(detail: TransferRequested, ctx: MessageContext) -> None:
        seen.append(detail)

    @router.on_aws(DataSyncStateChange)
    async def datasync(change: DataSyncStateChange, ctx: MessageContext) -> None:
        seen.append(change)

    return router, seen


def test_the_sample_datasync_event_is_one_typed_value() -> None:
    # GIVEN the body the default-bus rule delivers (DataSync's whole EventBridge event)
    envelope = parse_body((EVENTS / "datasync-task-execution-state-change.json").read_text())
    assert isinstance(envelope, EventBridgeEvent)
    router, _ = router_with_routes()
    # WHEN routed and parsed
    route = router.route(envelope)
    assert isinstance(route, AwsRoute)
    change = route.parse(envelope)
    # THEN the handler gets the execution, its task, the state and the time, no dict
    assert isinstance(change, DataSyncStateChange)
    assert change.execution_arn.endswith("/execution/exec-0123456789abcdef0")
    assert change.task_arn == TASK
    assert change.state == "SUCCESS"
    assert change.time == datetime(2025, 11, 25, 9, 41, 7, tzinfo=UTC)
    assert change.id == json.loads((EVENTS / "datasync-task-execution-state-change.json").read_text())["id"]


def test_a_datasync_event_naming_no_execution_is_rejected_with_the_field_named() -> None:
    router, _ = router_with_routes()
    bad = event(DataSyncStateChange.SOURCE, DataSyncStateChange.DETAIL_TYPE, {"State": "SUCCESS"}, [TASK])
    route = router.route(bad)
    assert isinstance(route, AwsRoute)
    with pytest.raises(RejectError, match=r"resources: Value error, no DataSync task-execution ARN"):
        route.parse(bad)


def test_an_unzoned_event_time_is_utc_and_a_missing_one_is_none() -> None:
    def change(time: str) -> DataSyncStateChange:
        envelope = EventBridgeEvent("e1", DataSyncStateChange.DETAIL_TYPE, DataSyncStateChange.SOURCE, time, {}, [ARN])
        return DataSyncStateChange.model_validate(envelope.as_json())

    assert change("2025-11-25T09:41:07").time == datetime(2025, 11, 25, 9, 41, 7, tzinfo=UTC)
    assert change("").time is None
    assert change("").state is None


@pytest.mark.parametrize(
    ("source", "detail_type", "message"),
    [
        (
            "lims.lab.example",
            "Transfer Window Opened",
            "'Transfer Window Opened' from source 'lims.lab.example' is not trusted",
        ),
        ("aws.s3", "Transfer Requested", "'Transfer Requested' from source 'aws.s3' is not trusted"),
        ("seqferry.executor", DataSyncStateChange.DETAIL_TYPE, "no handler for detail-type"),
        ("aws.datasync", "Transfer Exploded", "no handler for detail-type 'Transfer Exploded'"),
    ],
)
def test_what_no_route_accepts_is_rejected(source: str, detail_type: str, message: str) -> None:
    router, _ = router_with_routes()
    with pytest.raises(RejectError, match=message):
        router.route(event(source, detail_type, {}))


def test_our_events_route_by_detail_type_from_a_trusted_source() -> None:
    router, _ = router_with_routes()
    route = router.route(event("lims.lab.example", "Transfer Requested", {}))
    assert isinstance(route, DetailRoute)
    assert route.model is TransferRequested
    assert route.idempotent


def test_a_router_without_an_s3_handler_rejects_s3_records() -> None:
    with pytest.raises(RejectError, match="no S3 handler"):
        Router().s3_handler()


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (EnvelopeError, RejectError),
        (EntryTooLargeError, RejectError),
        (PublishError, RetryLaterError),
        (IdempotencyInProgressError, RetryLaterError),
        (StoreConflictError, RetryLaterError),
        (PatternError, SeqferryError),
        (UnknownInstrumentError, SeqferryError),
        (IgnoreError, SeqferryError),
    ],
)
def test_the_shared_package_has_one_error_family(error: type[Exception], outcome: type[Exception]) -> None:
    # Each error of the shared runtime says, by its class, what the consumer does with the message.
    assert issubclass(error, outcome)
