import json

import pytest

from seqferry_shared.errors import RejectError
from seqferry_shared.messaging.envelopes import EnvelopeError, EventBridgeEvent, S3TestEvent, parse_body


def test_eventbridge_event() -> None:
    body = json.dumps(
        {
            "id": "1",
            "detail-type": "Transfer Requested",
            "source": "lims",
            "time": "2026-11-25T09:00:00Z",
            "resources": ["arn:x"],
            "detail": {"a": 1},
        }
    )
    event = parse_body(body)
    assert isinstance(event, EventBridgeEvent)
    assert event.detail_type == "Transfer Requested"
    assert event.resources == ["arn:x"]
    assert event.as_json()["time"] == "2026-11-25T09:00:00Z"


def test_s3_notification_keys_are_url_decoded() -> None:
    # GIVEN the body S3 really sends (moto server captured): '+' is a space, %2B a plus
    body = json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "b"},
                        "object": {"key": "adhoc%2Fmy+file%2Bx.txt", "size": 3, "eTag": "e"},
                    },
                }
            ]
        }
    )
    records = parse_body(body)
    assert isinstance(records, list)
    assert records[0].key == "adhoc/my file+x.txt"
    assert records[0].dedup_key == "b/adhoc/my file+x.txt#e"


def test_s3_test_event() -> None:
    assert isinstance(parse_body('{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}'), S3TestEvent)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON list"),
        ('{"x": 1}', "neither"),
        ('{"detail-type": "X", "id": "1", "source": "s"}', "detail"),
        ('{"Records": [{"s3": {}}]}', "Records[0]"),
    ],
)
def test_malformed_bodies_name_the_problem(body: str, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message.replace("[", r"\[").replace("]", r"\]")) as raised:
        parse_body(body)
    # AND the consumer's outcome for it is a rejection (dead-letter queue), not a retry
    assert isinstance(raised.value, RejectError)
