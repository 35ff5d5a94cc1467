"""Announcements exactly once: realistic runs through the services; every event on the bus, SNS and webhook counted.

Nothing crashes here. The bus answers the notifier slower than its outbox lease (a busy or throttled EventBridge:
every PutEvents of the notifier takes 4 s, the lease is 2 s): a delivery that outlives its lease used to be
started a second time by the sweeper, which put identical copies of `Run Transfer Completed` on the bus.
"""

from __future__ import annotations

from collections import Counter

import pytest
from scenario import Profile, Recorder, Row
from system import COMPLETED, System, wait_until
from workload import RunFolder

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(1800)]


def test_each_run_is_announced_exactly_once_on_every_channel(
    system: System, profile: Profile, reliability: Recorder
) -> None:
    assert system.proxy is not None
    # GIVEN the scheduler, executor and notifier as processes, and a bus slower than the notifier's outbox lease
    system["notifier"].env |= {"SEQFERRY_NOTICE_LEASE_S": "2"}
    system.proxy.set_rules([{"kind": "latency", "clients": ["notifier"], "operations": ["PutEvents"], "delay_s": 4}])
    system.start("scheduler", "executor", "notifier")
    # WHEN a MiSeq run and a NovaSeq 6000 run (thousands of files in all) are written while they are transferred
    reads, flowcell = profile.miseq
    miseq = RunFolder(system.nas, "miseq", reads=reads, flowcell=flowcell, seed=11, pace=10).start()
    reads, flowcell = profile.novaseq
    novaseq = RunFolder(system.nas, "novaseq6000", reads=reads, flowcell=flowcell, seed=12, pace=10).start()
    miseq.wait()
    novaseq.wait()
    runs = {miseq.run_id, novaseq.run_id}
    wait_until(lambda: set(system.completions()) >= runs, 900, "both runs announced", system=system)
    # (settled: nothing pending in the outbox for longer than a lease and several sweeps)
    system.settle(quiet_s=4, timeout_s=300)
    bus = system.completions()
    sns = Counter(m["run_id"] for m in system.sns.messages("run_completed"))
    webhook = Counter(p["run_id"] for p in system.webhook.payloads("run_completed"))
    event_ids = {e["detail"]["meta"]["event_id"] for e in system.events(COMPLETED)}
    files = len(miseq.files()) + len(novaseq.files())
    reliability.add(
        Row(
            scenario="announce",
            fault="a bus slower than the outbox lease",
            injected=f"every PutEvents of the notifier delayed 4 s (lease 2 s); 2 runs, {files} files",
            count=len(runs),
            lost=sum(1 for r in runs if not (bus[r] and sns[r] and webhook[r])),
            duplicated=sum(max(0, c[r] - 1) for c in (bus, sns, webhook) for r in runs),
            notes="copies per run: bus, SNS, webhook "
            + "; ".join(f"{bus[r]}, {sns[r]}, {webhook[r]}" for r in sorted(runs)),
        )
    )
    # THEN each run was announced once on the bus, once over SNS and once to the webhook
    assert bus == Counter(dict.fromkeys(runs, 1))
    assert sns == Counter(dict.fromkeys(runs, 1))
    assert webhook == Counter(dict.fromkeys(runs, 1))
    assert len(event_ids) == 2
