"""The state table's registry: no two record kinds can produce the same key, and each listing names one kind."""

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqferry_shared.state import kinds
from seqferry_shared.state.kinds import (
    ADHOC_REQUEST,
    EXECUTOR_EXECUTION,
    EXECUTOR_QUEUE,
    EXECUTOR_QUEUE_ITEM,
    EXECUTOR_REQUEST,
    IDEMPOTENCY_CLAIM,
    KINDS,
    NOTIFIER_EXECUTION,
    NOTIFIER_NOTICE,
    NOTIFIER_RUN,
    SCHEDULER_TICK,
    Key,
    Listing,
    RecordKind,
)


def _prefix_overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _sk_overlap(a: RecordKind, b: RecordKind) -> bool:
    if a.sk_is_prefix and b.sk_is_prefix:
        return _prefix_overlap(a.sk, b.sk)
    if a.sk_is_prefix:
        return b.sk.startswith(a.sk)
    if b.sk_is_prefix:
        return a.sk.startswith(b.sk)
    return a.sk == b.sk


def can_collide(a: RecordKind, b: RecordKind) -> bool:
    """True if some ids make ``a`` and ``b`` produce the same (pk, sk).

    A partition key is a prefix followed by an id that may hold any character, so two kinds share partition keys
    exactly when one prefix is a prefix of the other; within shared partitions, sort keys decide.
    """
    pk_overlap = any(_prefix_overlap(p, q) for p in a.pk_prefixes for q in b.pk_prefixes)
    return pk_overlap and _sk_overlap(a, b)


def test_every_kind_is_registered() -> None:
    # GIVEN every RecordKind the registry module declares
    declared = {value for value in vars(kinds).values() if isinstance(value, RecordKind)}
    # THEN KINDS lists them all (a kind left out would escape the checks below)
    assert declared == set(KINDS)
    assert len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize(("a", "b"), list(combinations(KINDS, 2)), ids=lambda k: k.name)
def test_no_two_kinds_can_produce_the_same_key(a: RecordKind, b: RecordKind) -> None:
    assert not can_collide(a, b), f"{a.name} and {b.name} can produce the same key"


def test_the_check_sees_a_collision() -> None:
    # GIVEN kinds that would collide: a prefix that is a prefix of another, the same sort key
    assert can_collide(RecordKind("x", pk_prefix="ex", sk="exec"), EXECUTOR_EXECUTION)
    assert can_collide(RecordKind("y", pk_prefix="run#", sk="notice#late"), NOTIFIER_NOTICE)
    assert can_collide(RecordKind("z", parents=(EXECUTOR_QUEUE,), sk="q", sk_is_prefix=True), EXECUTOR_QUEUE_ITEM)
    # AND kinds that share a partition but not a sort key do not
    assert not can_collide(RecordKind("w", pk_prefix="run#", sk="summary"), NOTIFIER_RUN)


def test_each_listing_key_names_one_kind() -> None:
    owners: dict[Listing, list[str]] = {}
    for kind in KINDS:
        for listing in kind.listings:
            owners.setdefault(listing, []).append(kind.name)
    assert {listing: names for listing, names in owners.items() if len(names) > 1} == {}
    assert set(owners) == set(Listing)


ids = st.text(alphabet=st.sampled_from("#abc-_:/0"), max_size=12)


@given(ids, ids, ids, ids)
def test_keys_of_different_kinds_never_meet(a: str, b: str, c: str, d: str) -> None:
    # GIVEN ids full of separators and other kinds' prefixes
    def keys(x: str, y: str) -> dict[str, Key]:
        run, execution, queue = NOTIFIER_RUN.key(x), NOTIFIER_EXECUTION.key(x), EXECUTOR_QUEUE.key(x)
        return {
            IDEMPOTENCY_CLAIM.name: IDEMPOTENCY_CLAIM.key(x),
            SCHEDULER_TICK.name: SCHEDULER_TICK.key(x, y),
            EXECUTOR_QUEUE.name: queue,
            EXECUTOR_QUEUE_ITEM.name: EXECUTOR_QUEUE_ITEM.child(queue, y),
            EXECUTOR_EXECUTION.name: EXECUTOR_EXECUTION.key(x),
            EXECUTOR_REQUEST.name: EXECUTOR_REQUEST.key(x),
            ADHOC_REQUEST.name: ADHOC_REQUEST.key(x),
            NOTIFIER_EXECUTION.name: execution,
            NOTIFIER_RUN.name: run,
            f"{NOTIFIER_NOTICE.name} of a run": NOTIFIER_NOTICE.child(run, y),
            f"{NOTIFIER_NOTICE.name} of an execution": NOTIFIER_NOTICE.child(execution, y),
        }

    first, second = keys(a, b), keys(c, d)
    # THEN no key of one kind equals a key of another
    for name, key in first.items():
        for other, other_key in second.items():
            if other != name:
                assert key != other_key, f"{name} {key} == {other} {other_key}"


def test_stored_formats_are_kept() -> None:
    # Deployed tables hold these keys; changing one would orphan the records already stored.
    assert IDEMPOTENCY_CLAIM.key("executor#e1") == Key("idem#executor#e1", "-")
    assert SCHEDULER_TICK.key("nightly", "1480412") == Key("tick#nightly#1480412", "tick")
    assert EXECUTOR_QUEUE.key("t") == Key("task#t", "state")
    assert EXECUTOR_QUEUE_ITEM.child(EXECUTOR_QUEUE.key("t"), "000000000007") == Key("task#t", "q#000000000007")
    assert EXECUTOR_EXECUTION.key("exec-1") == Key("exec#exec-1", "exec")
    assert EXECUTOR_REQUEST.key("window#t#7") == Key("req#window#t#7", "req")
    assert ADHOC_REQUEST.key("r1") == Key("adhoc#req#r1", "request")
    assert NOTIFIER_EXECUTION.key("exec-1") == Key("nexec#exec-1", "execution")
    assert NOTIFIER_RUN.key("R") == Key("run#R", "run")
    assert NOTIFIER_NOTICE.child(NOTIFIER_RUN.key("R"), "completed") == Key("run#R", "notice#completed")
    payloads = {k.name: k.payload for k in KINDS if k.payload}
    assert set(payloads.values()) == {"result", "data", "record", "doc"}


def test_keys_are_built_only_the_declared_way() -> None:
    with pytest.raises(ValueError, match="one sort key"):
        EXECUTOR_EXECUTION.key("e", suffix="x")
    with pytest.raises(ValueError, match="parent's partition"):
        NOTIFIER_NOTICE.key("R")
    with pytest.raises(ValueError, match="not stored under"):
        NOTIFIER_NOTICE.child(EXECUTOR_EXECUTION.key("e"), "completed")
