"""The embedded emulator (tests and ``make dev``) forgets what was deleted, and its memory follows what it holds.

moto registers every model object it creates for its dashboard and never lets go; a DynamoDB transaction copies
the whole table first, so each transaction registered a copy of every item (the load soak's emulator passed 12 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from seqferry_shared.testing.motoserver import LoopbackProcess, free_port, start_moto_server

ITEMS = 500
TRANSACTIONS = 150
MESSAGES = 200


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def registered(url: str) -> dict[str, int]:
    """How many objects moto's dashboard register holds, per model (DynamoDB items, SQS messages)."""
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=60) as response:
        data = json.loads(response.read())
    return {
        "Item": len(data.get("dynamodb", {}).get("Item", [])),
        "Message": len(data.get("sqs", {}).get("Message", [])),
    }


def dev_emulator(log: Path) -> LoopbackProcess:
    """The emulator as ``make dev`` runs it (the Procfile's command)."""
    port = free_port()
    out = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "seqferry_shared.devstack", "emulator", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    server = LoopbackProcess(port=port, process=process, log=out)
    server.wait_ready("dev emulator", lambda: urllib.request.urlopen(f"{server.url}/moto-api/", timeout=1).close(), 30)
    return server


@pytest.fixture(params=["tests", "make dev"])
def emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LoopbackProcess]:
    server = (
        start_moto_server(log_path=tmp_path / "moto.log")
        if request.param == "tests"
        else dev_emulator(tmp_path / "emulator.log")
    )
    try:
        yield server
    finally:
        server.stop()


def test_transactions_deletes_and_overwrites_leave_nothing_behind(emulator: LoopbackProcess) -> None:
    client = {"endpoint_url": emulator.url, "region_name": "us-east-1"}
    ddb = boto3.client("dynamodb", aws_access_key_id="t", aws_secret_access_key="t", **client)
    sqs = boto3.client("sqs", aws_access_key_id="t", aws_secret_access_key="t", **client)
    # GIVEN a table of a few hundred items (the services share one state table)
    ddb.create_table(
        TableName="state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(ITEMS):
        ddb.put_item(TableName="state", Item={"pk": {"S": f"item-{i}"}, "body": {"S": "x" * 200}})
    baseline = rss_mib(emulator.process.pid)
    # WHEN transactions rewrite one item over and over, and messages pass through a queue and are deleted
    for i in range(TRANSACTIONS):
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "state", "Item": {"pk": {"S": "queue"}, "v": {"N": str(i)}}}}]
        )
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    for i in range(0, MESSAGES, 10):
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": "m" * 2000} for n in range(i, i + 10)]
        )
    received = 0
    while received < MESSAGES:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        received += len(messages)
        sqs.delete_message_batch(
            QueueUrl=queue, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in messages]
        )
    # THEN the emulator still serves what it holds, and holds no copy of what is gone
    assert ddb.get_item(TableName="state", Key={"pk": {"S": "queue"}})["Item"]["v"] == {"N": str(TRANSACTIONS - 1)}
    assert ddb.scan(TableName="state", Select="COUNT")["Count"] == ITEMS + 1
    grown = rss_mib(emulator.process.pid) - baseline
    # moto's own register would hold ITEMS copies per transaction (75,000 here) and every deleted message
    assert registered(emulator.url) == {"Item": 0, "Message": 0}
    # AND its memory did not grow with the transactions (registered, those copies cost ~50 MiB here, against 2-3)
    assert grown < 24, f"the emulator grew by {grown:.0f} MiB"


def test_a_cancelled_transaction_puts_back_exactly_its_own_items(emulator: LoopbackProcess) -> None:
    client = {"endpoint_url": emulator.url, "region_name": "us-east-1"}
    ddb = boto3.client("dynamodb", aws_access_key_id="t", aws_secret_access_key="t", **client)
    ddb.create_table(
        TableName="state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )

    def key(sk: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": "task"}, "sk": {"S": sk}}

    ddb.put_item(TableName="state", Item={**key("state"), "v": {"N": "1"}})
    ddb.put_item(TableName="state", Item={**key("item-1"), "data": {"S": "one"}})
    # WHEN a transaction updates one item, deletes another, adds a third, then fails its version check
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "state", "Key": key("item-1"), "UpdateExpression": "SET #d = :d",
                            "ExpressionAttributeNames": {"#d": "data"},
                            "ExpressionAttributeValues": {":d": {"S": "changed"}}}},
                {"Put": {"TableName": "state", "Item": {**key("item-2"), "data": {"S": "two"}}}},
                {"Put": {"TableName": "state", "Item": {**key("state"), "v": {"N": "3"}},
                         "ConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": {"N": "2"}}}},
            ]
        )  # fmt: skip
    # THEN every item is as it was: the update undone, the new item gone, the checked one untouched
    items = {i["sk"]["S"]: i for i in ddb.query(
        TableName="state", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "task"}}
    )["Items"]}  # fmt: skip
    assert sorted(items) == ["item-1", "state"]
    assert items["item-1"]["data"] == {"S": "one"}
    assert items["state"]["v"] == {"N": "1"}
    # AND a transaction that passes its check applies every action
    ddb.transact_write_items(
        TransactItems=[
            {"Delete": {"TableName": "state", "Key": key("item-1")}},
            {"Put": {"TableName": "state", "Item": {**key("state"), "v": {"N": "2"}},
                     "ConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}}},
        ]
    )  # fmt: skip
    assert ddb.get_item(TableName="state", Key=key("item-1")).get("Item") is None
    assert ddb.get_item(TableName="state", Key=key("state"))["Item"]["v"] == {"N": "2"}
