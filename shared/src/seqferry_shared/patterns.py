"""Include patterns in DataSync filter syntax: validation, matching and splitting.

A pattern is an absolute path on the NAS (relative to the location root), optionally ending in ``*``.
DataSync's rules, which the ``local`` backend reproduces: ``/dir`` and ``/dir/`` match the folder and everything
under it; ``/dir/2411*`` matches every path that starts with ``/dir/2411``; ``*`` is allowed only as the last
character; patterns are joined with ``|`` and one filter value holds at most 102,400 characters.

Validation treats every pattern as hostile input: the reason of each rejection names what is wrong.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seqferry_shared.errors import SeqferryError

FILTER_VALUE_LIMIT = 102_400
MAX_PATTERN_LENGTH = 4_096
# NAME_MAX of every POSIX filesystem an NFS or SMB share exports: a longer segment can never name anything.
MAX_SEGMENT_BYTES = 255


class PatternError(SeqferryError, ValueError):
    """A pattern is not acceptable; ``reason`` says why in words a user can act on."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"{reason}: {escape(pattern)}")
        self.pattern = pattern
        self.reason = reason


def escape(text: str, limit: int = 200) -> str:
    """Printable, bounded rendering of untrusted text for messages and reports."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def has_surrogate(text: str) -> bool:
    """True if ``text`` holds a lone surrogate (category Cs): not a character, and not encodable as UTF-8."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def validate_pattern(pattern: str, roots: Sequence[str] | None = None) -> str:
    """Return ``pattern`` if it is a safe include pattern under one of ``roots``; raise PatternError otherwise.

    ``roots`` are absolute normalized folders; ``None`` means no root restriction. Comparison is segment by
    segment, so ``/seq/miseq-old`` is not under ``/seq/miseq`` and ``/seq/mi*`` is not either.
    """
    if not pattern:
        raise PatternError(pattern, "empty pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(pattern, f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    if "\x00" in pattern:
        raise PatternError(pattern, "NUL character not allowed")
    if has_surrogate(pattern):
        raise PatternError(pattern, "lone surrogate (Unicode category Cs) not allowed: it is not a character")
    if _has_control(pattern):
        raise PatternError(pattern, "control or invisible formatting character not allowed")
    if "|" in pattern:
        raise PatternError(pattern, "'|' not allowed (it separates filter patterns)")
    if "\\" in pattern:
        raise PatternError(pattern, "backslash not allowed (use '/'; Windows paths are not NAS paths)")
    if not pattern.startswith("/"):
        raise PatternError(pattern, "pattern must be an absolute path starting with '/'")
    star = pattern.endswith("*")
    body = pattern[:-1] if star else pattern
    if "*" in body:
        raise PatternError(pattern, "'*' allowed only as the last character")
    segments = body.split("/")[1:]
    if any(seg in (".", "..") for seg in segments):
        raise PatternError(pattern, "'.' and '..' segments not allowed")
    inner = segments[:-1] if segments and segments[-1] == "" else segments
    if any(seg == "" for seg in inner):
        raise PatternError(pattern, "empty path segment ('//') not allowed")
    longest = max((len(seg.encode()) for seg in segments), default=0)
    if longest > MAX_SEGMENT_BYTES:
        raise PatternError(
            pattern, f"path segment of {longest} bytes: a file or folder name has at most {MAX_SEGMENT_BYTES} bytes"
        )
    if body != "/" and posixpath.normpath(body.rstrip("/") or "/") != body.rstrip("/"):
        raise PatternError(pattern, "path is not normalized")
    if roots is not None and not is_under_roots(pattern, roots):
        raise PatternError(pattern, "path is outside the allowed roots " + ", ".join(roots))
    return pattern


def is_under_roots(pattern: str, roots: Iterable[str]) -> bool:
    """True if every path the pattern can match lies in one of the roots (segment-wise)."""
    star = pattern.endswith("*")
    body = pattern[:-1] if star else pattern
    for raw_root in roots:
        root = raw_root.rstrip("/")
        if root == "":
            return True
        if star:
            # '/root/x*' stays under root; '/root*' or '/ro*' could match siblings of root.
            if body.startswith(root + "/"):
                return True
        else:
            plain = body.rstrip("/")
            if plain == root or plain.startswith(root + "/"):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Matcher:
    """Decides whether a NAS path (absolute, relative to the location root) is included."""

    patterns: tuple[str, ...]

    @classmethod
    def of(cls, patterns: Iterable[str]) -> Matcher:
        return cls(tuple(patterns))

    def matches(self, path: str) -> bool:
        return any(match(p, path) for p in self.patterns)

    def may_contain(self, directory: str) -> bool:
        """True if something under ``directory`` could match: the walk must descend into it."""
        return any(may_contain(p, directory) for p in self.patterns)


def match(pattern: str, path: str) -> bool:
    """DataSync include semantics for one pattern and one path."""
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    base = pattern.rstrip("/") or "/"
    if base == "/":
        return True
    return path == base or path.startswith(base + "/")


def may_contain(pattern: str, directory: str) -> bool:
    if match(pattern, directory):
        return True
    prefix = pattern[:-1] if pattern.endswith("*") else pattern.rstrip("/")
    return prefix.startswith(directory.rstrip("/") + "/")


def join_filter(patterns: Sequence[str]) -> str:
    return "|".join(patterns)


def split_filter(patterns: Sequence[str], limit: int = FILTER_VALUE_LIMIT) -> list[list[str]]:
    """Split patterns into groups whose ``|``-joined value fits ``limit``; a pattern is never cut."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for pattern in patterns:
        if len(pattern) > limit:
            raise PatternError(pattern, f"pattern longer than the filter limit of {limit} characters")
        extra = len(pattern) + (1 if current else 0)
        if current and size + extra > limit:
            groups.append(current)
            current, size = [], 0
            extra = len(pattern)
        current.append(pattern)
        size += extra
    if current:
        groups.append(current)
    return groups
