"""The state table's layout and every kind of record stored in it, declared once for all services.

One DynamoDB table (``<prefix>-state``) holds every service's records. Its attribute names are named here and
nowhere else, the way Powertools' persistence layer names ``key_attr`` / ``data_attr`` once: items are keyed by
``pk`` / ``sk``, listed through the index ``gsi1`` on ``gsi1pk`` / ``gsi1sk``, and expire by TTL on ``expires_at``.

Each :class:`RecordKind` says how its items are keyed (a partition-key prefix, or the partition of a parent kind;
an exact sort key, or a sort-key prefix for kinds with many items per partition), which listing keys (``gsi1pk``)
it is listed under, which attribute holds its JSON document and whether writes compare-and-set on ``version``.
A service takes its kinds from here and never spells a key prefix of its own; ``shared/tests/unit/
test_state_kinds.py`` proves that no two kinds can produce the same key and no two share a listing key.

The formats are the ones deployed tables already hold, kept byte for byte (an upgrade needs no migration): the
notifier's executions keep ``nexec#`` beside the executor's ``exec#``, and the document attribute stays ``data``,
``doc``, ``record`` or ``result`` per kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique
from typing import Any, NamedTuple

PK = "pk"
SK = "sk"
LISTING_INDEX = "gsi1"
LISTING_PK = "gsi1pk"
LISTING_SK = "gsi1sk"
TTL = "expires_at"
VERSION = "version"
SEPARATOR = "#"


@unique
class Listing(StrEnum):
    """Listing keys (``gsi1pk``): each names one kind's items, so a listing never returns another kind's."""

    EXECUTOR_TASKS = "executor#tasks"
    EXECUTOR_EXECUTIONS = "executor#executions"
    EXECUTOR_REQUESTS = "executor#requests"
    ADHOC_REQUESTS = "adhoc-requests"
    NOTIFIER_EXECUTIONS = "notifier#executions"
    NOTIFIER_RUNS = "notifier#runs"
    NOTIFIER_NOTICES = "notifier#notices"
    NOTIFIER_NOTICES_PENDING = "notifier#notices#pending"


class Key(NamedTuple):
    pk: str
    sk: str

    def item(self) -> dict[str, Any]:
        """The key as DynamoDB attribute values."""
        return {PK: {"S": self.pk}, SK: {"S": self.sk}}


@dataclass(frozen=True, slots=True)
class RecordKind:
    name: str
    sk: str  # the sort key, or its prefix when ``sk_is_prefix``
    pk_prefix: str = ""  # a partition of its own: ``pk_prefix`` + the record's id
    parents: tuple[RecordKind, ...] = ()  # or items stored in the partition of a record of one of these kinds
    sk_is_prefix: bool = False
    listings: tuple[Listing, ...] = ()
    payload: str | None = None  # attribute holding the record's JSON document (None: plain attributes)
    versioned: bool = False  # writes compare-and-set on ``version``

    @property
    def document(self) -> str:
        """The attribute holding the record's JSON document."""
        if self.payload is None:
            raise ValueError(f"{self.name} records have no document attribute")
        return self.payload

    @property
    def pk_prefixes(self) -> tuple[str, ...]:
        return (self.pk_prefix,) if self.pk_prefix else tuple(p.pk_prefix for p in self.parents)

    def key(self, *parts: str, suffix: str = "") -> Key:
        """The key of the record identified by ``parts`` (joined by ``#``), with ``suffix`` after a sort-key prefix."""
        if not self.pk_prefix:
            raise ValueError(f"{self.name} records live in a parent's partition: use child()")
        return Key(self.pk_prefix + SEPARATOR.join(parts), self._sk(suffix))

    def child(self, parent: Key, suffix: str = "") -> Key:
        """The key of a record stored in ``parent``'s partition."""
        if not any(parent.pk.startswith(p.pk_prefix) for p in self.parents):
            raise ValueError(f"{self.name} records are not stored under {parent.pk!r}")
        return Key(parent.pk, self._sk(suffix))

    def _sk(self, suffix: str) -> str:
        if suffix and not self.sk_is_prefix:
            raise ValueError(f"{self.name} records have the one sort key {self.sk!r}")
        return self.sk + suffix


IDEMPOTENCY_CLAIM = RecordKind("idempotency claim", pk_prefix="idem#", sk="-", payload="result")
SCHEDULER_TICK = RecordKind("scheduler tick claim", pk_prefix="tick#", sk="tick")
EXECUTOR_QUEUE = RecordKind("executor task queue", pk_prefix="task#", sk="state", listings=(Listing.EXECUTOR_TASKS,))
EXECUTOR_QUEUE_ITEM = RecordKind(
    "executor queue item", parents=(EXECUTOR_QUEUE,), sk="q#", sk_is_prefix=True, payload="data"
)
EXECUTOR_EXECUTION = RecordKind(
    "executor execution", pk_prefix="exec#", sk="exec", listings=(Listing.EXECUTOR_EXECUTIONS,), payload="data"
)
EXECUTOR_REQUEST = RecordKind("executor request", pk_prefix="req#", sk="req", listings=(Listing.EXECUTOR_REQUESTS,))
ADHOC_REQUEST = RecordKind(
    "adhoc request", pk_prefix="adhoc#req#", sk="request", listings=(Listing.ADHOC_REQUESTS,), payload="record"
)
NOTIFIER_EXECUTION = RecordKind(
    "notifier execution",
    pk_prefix="nexec#",
    sk="execution",
    listings=(Listing.NOTIFIER_EXECUTIONS,),
    payload="doc",
    versioned=True,
)
NOTIFIER_RUN = RecordKind(
    "notifier run", pk_prefix="run#", sk="run", listings=(Listing.NOTIFIER_RUNS,), payload="doc", versioned=True
)
NOTIFIER_NOTICE = RecordKind(
    "notifier notice",
    parents=(NOTIFIER_RUN, NOTIFIER_EXECUTION),
    sk="notice#",
    sk_is_prefix=True,
    listings=(Listing.NOTIFIER_NOTICES_PENDING, Listing.NOTIFIER_NOTICES),
    payload="doc",
    versioned=True,
)

KINDS: tuple[RecordKind, ...] = (
    IDEMPOTENCY_CLAIM,
    SCHEDULER_TICK,
    EXECUTOR_QUEUE,
    EXECUTOR_QUEUE_ITEM,
    EXECUTOR_EXECUTION,
    EXECUTOR_REQUEST,
    ADHOC_REQUEST,
    NOTIFIER_EXECUTION,
    NOTIFIER_RUN,
    NOTIFIER_NOTICE,
)
