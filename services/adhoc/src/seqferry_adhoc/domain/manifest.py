"""Ad-hoc manifests: bytes in, accepted include patterns and rejected lines out.

A manifest is hostile until validated. Format: UTF-8 text, with or without a byte-order mark, LF or CRLF line
endings, one absolute NAS path per line. Blank lines and lines whose first non-space character is ``#`` are
skipped; spaces and tabs around a path are trimmed; repeated paths are kept once. Each remaining line is an
include pattern checked by :func:`seqferry_shared.patterns.validate_pattern` against the allowed roots.

Problems with one line reject that line only (its number and the reason are reported) and the valid lines
still go through. Problems with the file as a whole — too large, not UTF-8 at all, too many path lines —
reject the manifest as a whole: a truncated or half-read list must never turn into a transfer, because a cut
path can name a wider folder than the one meant.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from seqferry_shared.patterns import PatternError, escape, validate_pattern

DEFAULT_MAX_BYTES = 1_048_576
DEFAULT_MAX_LINES = 10_000
DEFAULT_MAX_LINE_LENGTH = 4_096
SHOWN_TEXT_LIMIT = 200
WHOLE_MANIFEST = 0
"""Line number of a rejection that concerns the manifest as a whole."""

# Spaces (Unicode category Zs) and tabs around a path are layout, never part of it. Other characters, including
# every control character, are left in place so that validation rejects them instead of silently dropping them.
_TRIM = "\t \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

Status = Literal["accepted", "partially_accepted", "rejected"]


@dataclass(frozen=True, slots=True)
class ManifestLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_lines: int = DEFAULT_MAX_LINES
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_lines < 1 or self.max_line_length < 1:
            raise ValueError("manifest limits must be positive")


@dataclass(frozen=True, slots=True)
class Accepted:
    line: int
    pattern: str


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    """1-based line number; ``WHOLE_MANIFEST`` (0) when the manifest as a whole is refused."""
    text: str
    """The offending text, escaped (no raw control characters) and cut to 200 characters."""
    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    line: int
    first_line: int
    """Line where the same pattern was first accepted."""


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    accepted: tuple[Accepted, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()

    @property
    def patterns(self) -> list[str]:
        return [a.pattern for a in self.accepted]

    @property
    def status(self) -> Status:
        if not self.accepted:
            return "rejected"
        return "partially_accepted" if self.rejected else "accepted"


def shown(text: str) -> str:
    """How untrusted text appears in results: escaped, bounded, never raw control characters."""
    return escape(text[: SHOWN_TEXT_LIMIT * 2], SHOWN_TEXT_LIMIT)


def reject_whole(reason: str, *, line: int = WHOLE_MANIFEST, text: str = "") -> ParsedManifest:
    return ParsedManifest(rejected=(Rejection(line=line, text=shown(text), reason=reason),))


def too_large(size: int, limits: ManifestLimits) -> ParsedManifest:
    """The result for a manifest whose size exceeds the limit (it is never read)."""
    return reject_whole(f"manifest is {size} bytes, larger than the limit of {limits.max_bytes} bytes")


def dedupe_key(pattern: str) -> str:
    """``/a/b`` and ``/a/b/`` select the same files in DataSync; ``/a/b*`` does not."""
    return pattern if pattern.endswith("*") else (pattern.rstrip("/") or "/")


def parse_manifest(data: bytes, roots: Sequence[str], limits: ManifestLimits | None = None) -> ParsedManifest:
    """Parse and validate a manifest; never raises for any content.

    ``roots`` is the allow-list of NAS folders (an empty list rejects every path).
    """
    limits = limits or ManifestLimits()
    roots = list(roots)
    if len(data) > limits.max_bytes:
        return too_large(len(data), limits)
    if data.startswith(_WIDE_BOMS):
        return reject_whole("manifest is UTF-16 or UTF-32 encoded; save it as UTF-8")
    lines = data.removeprefix(codecs.BOM_UTF8).split(b"\n")

    accepted: list[Accepted] = []
    rejected: list[Rejection] = []
    duplicates: list[Duplicate] = []
    first_seen: dict[str, int] = {}
    path_lines = 0
    for number, raw in enumerate(lines, start=1):
        raw_line = raw.removesuffix(b"\r")
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            # Latin-1 maps every byte to one character, so the offending bytes show up as \xNN.
            shown_text = shown(raw_line[: SHOWN_TEXT_LIMIT * 2].decode("latin-1"))
            rejected.append(Rejection(number, shown_text, "line is not valid UTF-8 (save the manifest as UTF-8)"))
            path_lines += 1
            if path_lines > limits.max_lines:
                return _too_many(number, limits)
            continue
        entry = text.strip(_TRIM)
        if not entry or entry.startswith("#"):
            continue
        path_lines += 1
        if path_lines > limits.max_lines:
            return _too_many(number, limits)
        reason = _line_problem(entry, roots, limits)
        if reason is not None:
            rejected.append(Rejection(number, shown(entry), reason))
            continue
        key = dedupe_key(entry)
        if key in first_seen:
            duplicates.append(Duplicate(line=number, first_line=first_seen[key]))
            continue
        first_seen[key] = number
        accepted.append(Accepted(line=number, pattern=entry))

    if not accepted and not rejected:
        return reject_whole("manifest has no path lines (it is empty or holds only blank and comment lines)")
    return ParsedManifest(accepted=tuple(accepted), rejected=tuple(rejected), duplicates=tuple(duplicates))


def _too_many(number: int, limits: ManifestLimits) -> ParsedManifest:
    return reject_whole(
        f"more than {limits.max_lines} path lines (line {number} is over the limit); the manifest is rejected "
        "as a whole, split it into several manifests",
        line=number,
    )


def _line_problem(entry: str, roots: list[str], limits: ManifestLimits) -> str | None:
    if len(entry) > limits.max_line_length:
        return f"line longer than {limits.max_line_length} characters"
    if "\r" in entry:
        return "carriage return inside a line (old Mac line endings?); use LF or CRLF line endings"
    try:
        validate_pattern(entry, roots)
    except PatternError as exc:
        return exc.reason
    return None


def validate_paths(
    paths: Sequence[str], roots: Sequence[str], limits: ManifestLimits | None = None
) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Validate paths given directly (HTTP API) exactly as manifest lines are validated.

    Returns ``(accepted, errors)`` with errors as ``(index, shown path, reason)``. Surrounding spaces are trimmed
    and repeated paths kept once, as in a manifest; a blank entry is an error, not a skipped line.
    """
    limits = limits or ManifestLimits()
    roots = list(roots)
    accepted: list[str] = []
    errors: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for index, path in enumerate(paths):
        entry = path.strip(_TRIM)
        reason = _line_problem(entry, roots, limits) if entry else "empty path"
        if reason is not None:
            errors.append((index, shown(path), reason))
            continue
        key = dedupe_key(entry)
        if key not in seen:
            seen.add(key)
            accepted.append(entry)
    return accepted, errors
