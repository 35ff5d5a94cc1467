"""Messages as queues really deliver them: duplicated and out of order, and poison among them."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from scenario import Profile, Recorder, Row
from system import STATE_CHANGED, System, wait_until
from workload import RunFolder

from seqferry_shared.events.models import TransferRequested

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(1800)]

ORDER = ["QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "CANCELLING", "SUCCESS", "ERROR"]
TERMINAL = {"SUCCESS", "ERROR"}


def entry(bus: str, detail: Any) -> dict[str, str]:
    return {
        "EventBusName": bus,
        "Source": "lims.tests",
        "DetailType": detail.DETAIL_TYPE,
        "Detail": detail.model_dump_json(exclude_none=True),
    }


class DashboardWatch:
    """Polls the notifier's executions and runs the way the dashboard does; notes any step backwards."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.last_state: dict[str, str] = {}
        self.completed: set[str] = set()
        self.backwards: list[str] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="dashboard-watch")
        self._thread.start()

    def _watch(self) -> None:
        notifier = self.system["notifier"]
        while not self._stop.is_set():
            try:
                executions = notifier.get("/executions?limit=200")[1]["items"]
                runs = notifier.get("/runs?limit=200")[1]["items"]
            except (OSError, KeyError, TypeError):
                self._stop.wait(0.3)
                continue
            self.polls += 1
            for execution in executions or []:
                key, state = execution["execution_id"], execution["state"]
                before = self.last_state.get(key)
                if before is not None and (
                    (before in TERMINAL and state != before) or ORDER.index(state) < ORDER.index(before)
                ):
                    self.backwards.append(f"execution {key}: {before} -> {state}")
                self.last_state[key] = state
            for view in runs or []:
                run_id = view["run"]["run_id"]
                if run_id in self.completed and view["status"] != "completed":
                    self.backwards.append(f"run {run_id}: completed -> {view['status']}")
                if view["status"] == "completed":
                    self.completed.add(run_id)
            self._stop.wait(0.3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_every_message_three_times_and_out_of_order(system: System, profile: Profile, reliability: Recorder) -> None:
    assert system.proxy is not None
    system.start("scheduler", "executor", "notifier")
    watch = DashboardWatch(system)
    # GIVEN every event the scheduler and executor put on the bus delivered three times, the copies up to 3 s
    # late (so a later state change often arrives before an earlier one)
    system.proxy.set_rules(
        [
            {
                "kind": "duplicate",
                "clients": ["scheduler", "executor"],
                "operations": ["PutEvents"],
                "copies": profile.copies,
                "delay_s": 3.0,
            }
        ],
        seed=9,
    )
    # WHEN two runs are written and transferred, and a LIMS asks for five transfers, each request sent three
    # times, all fifteen in a random order
    runs = [
        RunFolder(system.nas, "miseq", reads="12,12", flowcell="v2-nano", seed=71 + i, pace=10).start()
        for i in range(2)
    ]
    requests = [
        TransferRequested(request_id=f"lims-{i}", includes=[runs[i % 2].nas_path], requested_by="lims")
        for i in range(5)
    ]
    copies = [r for r in requests for _ in range(profile.copies)]
    random.Random(3).shuffle(copies)
    events = boto3.client("events")
    for request in copies:
        assert events.put_events(Entries=[entry(system.names.bus, request)])["FailedEntryCount"] == 0
        time.sleep(0.1)
    for run in runs:
        run.wait()
    run_ids = {run.run_id for run in runs}
    wait_until(lambda: run_ids <= set(system.completions()), 600, "both runs announced", system=system)
    request_ids = {r.request_id for r in requests}

    def executions_of_requests() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for event in system.events(STATE_CHANGED):
            trigger = event["detail"].get("trigger") or {}
            if trigger.get("kind") == "request":
                found.setdefault(trigger["id"], set()).add(event["detail"]["execution_id"])
        return found

    wait_until(lambda: request_ids <= set(executions_of_requests()), 300, "every request executed", system=system)
    system.settle(quiet_s=3, timeout_s=300)
    watch.stop()
    stats = system.proxy.stats()
    executions = executions_of_requests()
    announced = system.completions()
    reliability.add(
        Row(
            scenario="duplicates",
            fault=f"every event delivered {profile.copies} times, out of order",
            injected=f"proxy repeats each PutEvents of the scheduler and executor {profile.copies - 1} more "
            f"times within 3 s; each Transfer Requested sent {profile.copies} times, shuffled",
            count=stats["injected_by_kind"].get("duplicate", 0) + len(copies) - len(requests),
            lost=sum(1 for r in request_ids if not executions.get(r)) + sum(1 for r in run_ids if not announced[r]),
            duplicated=sum(len(e) - 1 for e in executions.values()) + sum(max(0, announced[r] - 1) for r in run_ids),
            notes=f"{len(watch.backwards)} backward step(s) in {watch.polls} dashboard polls",
        )
    )
    assert stats["injected_by_kind"].get("duplicate", 0) > 0
    # THEN each request ran exactly once, each run was announced once, and the dashboard never went backwards
    assert {r: len(executions.get(r, ())) for r in request_ids} == dict.fromkeys(request_ids, 1)
    assert announced == Counter(dict.fromkeys(run_ids, 1))
    assert watch.polls > 10
    assert watch.backwards == []


def poison_messages(system: System) -> dict[str, list[tuple[str, str]]]:
    """Per queue role: (what, body) of each poison message."""

    def envelope(detail_type: str, detail: Any, source: str = "lims.tests") -> str:
        return json.dumps({"id": f"poison-{random.random()}", "detail-type": detail_type, "source": source,
                           "time": "2026-01-01T00:00:00Z", "detail": detail})  # fmt: skip

    oversized = {"state": "TRANSFERRING", "junk": "x" * 240_000}
    return {
        "executor": [
            ("not JSON", "{not json"),
            ("unknown detail-type", envelope("Transfer Exploded", {"meta": {}})),
            ("oversized, unknown detail-type", envelope("Transfer Exploded", oversized)),
        ],
        "notifier": [
            ("not JSON", "\x00\x01binary"),
            ("wrong schema", envelope(STATE_CHANGED, {"execution_id": "x", "state": "EXPLODED"}, "seqferry.executor")),
            ("oversized, wrong schema", envelope(STATE_CHANGED, oversized, "seqferry.executor")),
        ],
        "adhoc": [
            ("not JSON", "]["),
            ("not an S3 notification", envelope("Object Created", {"bucket": {"name": "x"}}, "aws.s3")),
        ],
    }


def test_poison_goes_to_the_dead_letter_queue_and_the_rest_flows(
    system: System, profile: Profile, reliability: Recorder
) -> None:
    system.start("executor", "notifier", "adhoc")
    # GIVEN poison in every queue: bodies that are not JSON, unknown detail-types, wrong schemas, oversized
    poison = poison_messages(system)
    sent: dict[str, str] = {}
    for role, messages in poison.items():
        url = system.sqs.get_queue_url(QueueName=getattr(system.names, f"{role}_queue").name)["QueueUrl"]
        for what, body in messages:
            sent[system.sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]] = f"{role}: {what}"
    # WHEN a valid request arrives behind it
    request = TransferRequested(request_id="after-poison", includes=["/sequencers/incoming/miseq"])
    asked = time.monotonic()
    boto3.client("events").put_events(Entries=[entry(system.names.bus, request)])
    # THEN the valid request is executed while the poison is dealt with
    wait_until(
        lambda: any(
            (e["detail"].get("trigger") or {}).get("id") == "after-poison" and e["detail"]["state"] == "SUCCESS"
            for e in system.events(STATE_CHANGED)
        ),
        120,
        "the valid request executed",
        system=system,
    )
    handled_after = time.monotonic() - asked
    # AND every poison message ends in its queue's dead-letter queue, after exactly 5 receives, the reason logged
    expected = {role: len(messages) for role, messages in poison.items()}
    wait_until(
        lambda: (
            {role: system.queue_depths()[getattr(system.names, f"{role}_queue").dlq_name] for role in poison}
            == expected
        ),
        120,
        "poison in the dead-letter queues",
        system=system,
    )
    receives: dict[str, list[int]] = {}
    logs = {role: system[role].log_text() for role in poison}
    for message_id, label in sent.items():
        role = label.partition(":")[0]
        receives[label] = [
            int(line.split("(receive ")[1].split(",")[0])
            for line in logs[role].splitlines()
            if f"message {message_id} rejected" in line
        ]
    dead = {m["MessageId"] for role in poison for m in system.dlq_messages(role)}
    reliability.add(
        Row(
            scenario="poison",
            fault="poison messages",
            injected="not JSON, unknown detail-type, wrong schema, oversized (240 KB), sent to every queue",
            count=len(sent),
            lost=len(set(sent) - dead),
            duplicated=0,
            recovery_s=handled_after,
            notes="time is how long a valid request behind the poison took to be executed",
        )
    )
    assert dead == set(sent)
    assert {label: found for label, found in receives.items() if found != [1, 2, 3, 4, 5]} == {}
    assert "is not JSON" in logs["executor"]
    assert "is not JSON" in logs["notifier"]
    assert "no handler for detail-type 'Transfer Exploded'" in logs["executor"]
    assert "state: Input should be" in logs["notifier"]
    # AND no service crashed or restarted on the way
    for role in poison:
        assert (system[role].alive, system[role].starts) == (True, 1)
