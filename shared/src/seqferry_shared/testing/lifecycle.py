"""What an S3 lifecycle configuration does to one object: the rules that apply and where they move it.

Emulators store lifecycle configurations but never run them; tests read the configuration back from the emulator
and evaluate it here against an object's key and tags, with S3's filter semantics (Prefix, Tag, And of both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    rules: tuple[str, ...]
    transitions: tuple[tuple[str, int], ...]
    """(storage class, days) of the current version, earliest first."""
    expiration_days: int | None


def _matches(filter_: Mapping[str, Any], key: str, tags: Mapping[str, str]) -> bool:
    if "And" in filter_:
        both = filter_["And"]
        if not key.startswith(str(both.get("Prefix", ""))):
            return False
        return all(tags.get(t["Key"]) == t["Value"] for t in both.get("Tags", ()))
    if "Tag" in filter_:
        tag: Mapping[str, str] = filter_["Tag"]
        return tags.get(tag["Key"]) == tag["Value"]
    return key.startswith(str(filter_.get("Prefix", "")))


def lifecycle_outcome(rules: Sequence[Mapping[str, Any]], key: str, tags: Mapping[str, str]) -> Outcome:
    applied = [
        rule for rule in rules if rule.get("Status") == "Enabled" and _matches(rule.get("Filter", {}), key, tags)
    ]
    transitions = sorted(
        ((t["StorageClass"], int(t["Days"])) for rule in applied for t in rule.get("Transitions", ())),
        key=lambda t: t[1],
    )
    expirations = [int(rule["Expiration"]["Days"]) for rule in applied if "Days" in rule.get("Expiration", {})]
    return Outcome(
        rules=tuple(str(rule.get("ID", "")) for rule in applied),
        transitions=tuple(transitions),
        expiration_days=min(expirations) if expirations else None,
    )


def object_outcome(s3: Any, bucket: str, key: str) -> Outcome:
    """The bucket's lifecycle configuration, as the emulator holds it, applied to one stored object's tags."""
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
    return lifecycle_outcome(rules, key, tags)
