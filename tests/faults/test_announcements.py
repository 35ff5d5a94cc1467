"""Announcements exactly once: realistic runs through the services; every event on the bus, SNS and webhook counted."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from system import System, wait_until
from workload import RunFolder

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]


def test_each_run_is_announced_exactly_once_on_every_channel(system: System) -> None:
    # GIVEN the scheduler, executor and notifier as processes
    system.start("scheduler", "executor", "notifier")
    # WHEN a MiSeq run (3,425 files) and a NovaSeq 6000 run (1,566 files) are written while they are transferred
    miseq = RunFolder(system.nas, "miseq", reads="26,8,26", flowcell="v2", seed=11, pace=10).start()
    novaseq = RunFolder(system.nas, "novaseq6000", reads="51,8,8,51", flowcell="S1", seed=12, pace=10).start()
    miseq.wait()
    novaseq.wait()
    runs = {miseq.run_id, novaseq.run_id}
    started = time.monotonic()
    wait_until(lambda: set(system.completions()) == runs, 600, "both runs announced", system=system)
    print("announced after", time.monotonic() - started)
    system.settle(quiet_s=5, timeout_s=300)
    # THEN each run was announced once on the bus, once over SNS and once to the webhook
    assert system.completions() == Counter({miseq.run_id: 1, novaseq.run_id: 1})
    assert Counter(m["run_id"] for m in system.sns.messages("run_completed")) == Counter(dict.fromkeys(runs, 1))
    assert Counter(p["run_id"] for p in system.webhook.payloads("run_completed")) == Counter(dict.fromkeys(runs, 1))


def test_a_delivery_slower_than_the_lease_is_not_repeated(system: System) -> None:
    # GIVEN a notifier whose outbox lease (3 s) is shorter than one delivery: every PutEvents it makes takes 8 s
    system["notifier"].env |= {"SEQFERRY_NOTICE_LEASE_S": "3"}
    assert system.proxy is not None
    system.proxy.set_rules([{"kind": "latency", "clients": ["notifier"], "operations": ["PutEvents"], "delay_s": 8}])
    system.start("scheduler", "executor", "notifier")
    # WHEN a run is written and transferred
    run = RunFolder(system.nas, "miseq", reads="6,6", flowcell="v2-nano", seed=21, pace=20).start()
    run.wait()
    wait_until(lambda: run.run_id in system.completions(), 300, "the run announced", system=system)
    system.settle(quiet_s=12, timeout_s=120)
    # THEN it was announced once on every channel
    assert system.completions() == Counter({run.run_id: 1})
    assert [m["run_id"] for m in system.sns.messages("run_completed")] == [run.run_id]
    assert [p["run_id"] for p in system.webhook.payloads("run_completed")] == [run.run_id]
