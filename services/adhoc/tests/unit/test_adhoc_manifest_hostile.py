"""Hostile and awkward manifests: nothing outside the roots is ever accepted, every rejection says where and why.

``only_selects_under_roots`` below restates the safety rule independently of ``seqferry_shared.patterns`` so
the table and the property test compare two implementations rather than one with itself.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqferry_adhoc.domain.manifest import WHOLE_MANIFEST, ManifestLimits, ParsedManifest, parse_manifest

ROOTS = (
    "/sequencers/incoming/iseq",
    "/sequencers/incoming/nextseq",
    "/sequencers/incoming/miseq",
    "/sequencers/incoming/nextseq2000",
)
M = "/sequencers/incoming/miseq"
N = "/sequencers/incoming/nextseq"
RUN = "241125_M00123_0001_000000000-ABCDE"


def is_safe_text(text: str) -> bool:
    """No control, format or line/paragraph separator character anywhere."""
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def only_selects_under_roots(pattern: str, roots: Sequence[str]) -> bool:
    if not pattern or not is_safe_text(pattern) or "|" in pattern or "\\" in pattern:
        return False
    star = pattern.endswith("*")
    body = pattern[:-1] if star else pattern
    if "*" in body or not body.startswith("/"):
        return False
    segments = body.split("/")[1:]
    trailing_slash = bool(segments) and segments[-1] == ""
    if trailing_slash:
        segments = segments[:-1]
    if any(seg in ("", ".", "..") for seg in segments):
        return False
    for root in roots:
        root_segments = root.strip("/").split("/")
        n = len(root_segments)
        if segments[:n] != root_segments:
            continue
        # A trailing '*' extends the last segment: it must not be the root's own last segment.
        if not star or len(segments) > n or trailing_slash:
            return True
    return False


def trimmed(line: str) -> str:
    layout = {ch for ch in line if ch == "\t" or unicodedata.category(ch) == "Zs"}
    return line.strip("".join(layout))


def check_invariants(data: bytes, parsed: ParsedManifest, roots: Sequence[str]) -> None:
    physical_lines = data.count(b"\n") + 1
    for accepted in parsed.accepted:
        assert only_selects_under_roots(accepted.pattern, roots), accepted
        assert 1 <= accepted.line <= physical_lines
    for rejection in parsed.rejected:
        assert 0 <= rejection.line <= physical_lines
        assert rejection.reason
        assert is_safe_text(rejection.text), rejection
        assert len(rejection.text) <= 200
    patterns = parsed.patterns
    assert len(patterns) == len(set(patterns))


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line, substring of the reason)"""
    duplicates: list[int] = field(default_factory=list)
    limits: ManifestLimits = field(default_factory=ManifestLimits)


def text(*lines: str, end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode("utf-8")


OUTSIDE = "outside the allowed roots"
DOTS = "'.' and '..' segments not allowed"
CONTROL = "control or invisible formatting character"
STAR = "'*' allowed only as the last character"
BACKSLASH = "backslash not allowed"

CASES = [
    Case("valid-run-folder", text(f"{M}/{RUN}"), accepted=[f"{M}/{RUN}"]),
    # A segment longer than any POSIX or NFS name (255 bytes) would silently match nothing: refused with why.
    Case("256-byte-segment", text(f"{M}/{'r' * 256}/x"), rejected=[(1, "path segment of 256 bytes")]),
    Case("255-byte-segment", text(f"{M}/{'r' * 255}"), accepted=[f"{M}/{'r' * 255}"]),
    Case("traversal-to-etc", text(f"{M}/../../../etc/passwd"), rejected=[(1, DOTS)]),
    Case("traversal-trailing-dotdot", text(f"{M}/{RUN}/.."), rejected=[(1, DOTS)]),
    Case("traversal-up-and-back-in", text("/sequencers/incoming/../incoming/miseq/x"), rejected=[(1, DOTS)]),
    Case("dot-segment", text(f"{M}/./{RUN}"), rejected=[(1, DOTS)]),
    Case("dotdot-with-star", text(f"{M}/..*"), rejected=[(1, DOTS)]),
    Case("root-prefix-sibling", text("/sequencers/incoming/miseq-old/run"), rejected=[(1, OUTSIDE)]),
    Case("root-prefix-digit", text("/sequencers/incoming/nextseq2/run"), rejected=[(1, OUTSIDE)]),
    Case("root-star-reaches-siblings", text(f"{M}*"), rejected=[(1, OUTSIDE)]),
    Case("partial-root-star", text("/sequencers/incoming/mi*"), rejected=[(1, OUTSIDE)]),
    Case("parent-of-roots-star", text("/sequencers/*"), rejected=[(1, OUTSIDE)]),
    Case("whole-nas", text("/"), rejected=[(1, OUTSIDE)]),
    Case("whole-nas-star", text("/*"), rejected=[(1, OUTSIDE)]),
    Case("outside-entirely", text("/etc/shadow"), rejected=[(1, OUTSIDE)]),
    Case("adhoc-folder-not-a-root", text("/adhoc/other.txt"), rejected=[(1, OUTSIDE)]),
    Case(
        "fullwidth-solidus-lookalike",
        text("/sequencers/incoming/miseq\uff0f..\uff0fetc"),
        rejected=[(1, OUTSIDE)],
    ),
    Case("pipe-injection", text(f"{M}/{RUN}|/etc"), rejected=[(1, "'|' not allowed")]),
    Case("pipe-leading", text("|/etc/passwd"), rejected=[(1, "'|' not allowed")]),
    Case("wildcard-in-middle", text(f"{M}/*/Data"), rejected=[(1, STAR)]),
    Case("double-star", text(f"{M}/2411**"), rejected=[(1, STAR)]),
    Case("question-mark-is-literal", text(f"{M}/2411??"), accepted=[f"{M}/2411??"]),
    Case("nul-byte", text(f"{M}/{RUN}\x00/../../etc"), rejected=[(1, "NUL character")]),
    Case("ansi-escape", text(f"{M}/{RUN}\x1b[31m"), rejected=[(1, CONTROL)]),
    Case("delete-char", text(f"{M}/{RUN}\x7f"), rejected=[(1, CONTROL)]),
    Case("next-line-c1", text(f"{M}/a\x85/etc"), rejected=[(1, CONTROL)]),
    Case("form-feed-at-end-not-trimmed", text(f"{M}/{RUN}\x0c"), rejected=[(1, CONTROL)]),
    Case("zero-width-space", text(f"{M}/\u200b{RUN}"), rejected=[(1, CONTROL)]),
    Case("right-to-left-override", text(f"{M}/\u202e{RUN}"), rejected=[(1, CONTROL)]),
    Case("unicode-line-separator", text(f"{M}/a\u2028/etc"), rejected=[(1, CONTROL)]),
    Case("bom-in-the-middle", text(f"{M}/a", f"\ufeff{M}/b"), accepted=[f"{M}/a"], rejected=[(2, CONTROL)]),
    Case("windows-drive-path", text("C:\\Runs\\241125"), rejected=[(1, BACKSLASH)]),
    Case("windows-unc-path", text("\\\\nas\\sequencers\\incoming\\miseq"), rejected=[(1, BACKSLASH)]),
    Case("backslash-traversal", text(f"{M}\\..\\..\\etc"), rejected=[(1, BACKSLASH)]),
    Case("relative-path", text(f"sequencers/incoming/miseq/{RUN}"), rejected=[(1, "absolute path")]),
    Case("home-tilde", text("~/runs"), rejected=[(1, "absolute path")]),
    Case("double-slash-start", text(f"/{M}/{RUN}"), rejected=[(1, "empty path segment")]),
    Case("double-slash-inside", text(f"{M}//{RUN}"), rejected=[(1, "empty path segment")]),
    Case("crlf", text(f"{M}/a", f"{N}/b", end="\r\n"), accepted=[f"{M}/a", f"{N}/b"]),
    Case("bom-and-crlf", codecs.BOM_UTF8 + text(f"{M}/a", end="\r\n"), accepted=[f"{M}/a"]),
    Case("only-a-bom", codecs.BOM_UTF8, rejected=[(WHOLE_MANIFEST, "no path lines")]),
    Case(
        "comments-and-blank-lines",
        text("# re-transfer after the outage", "", "   ", f"{M}/a", "\t# indented comment", "  "),
        accepted=[f"{M}/a"],
    ),
    Case("hash-inside-a-path-is-not-a-comment", text(f"{M}/run#1"), accepted=[f"{M}/run#1"]),
    Case("commented-out-hostile-line", text(f"# {M}/../../etc", f"{M}/a"), accepted=[f"{M}/a"]),
    Case(
        "duplicates-kept-once",
        text(f"{M}/a", f"{M}/a", f"{M}/a/", f"  {M}/a  "),
        accepted=[f"{M}/a"],
        duplicates=[2, 3, 4],
    ),
    Case("star-and-plain-are-different", text(f"{M}/a", f"{M}/a*"), accepted=[f"{M}/a", f"{M}/a*"]),
    Case("surrounding-whitespace", text(f" \t {M}/a \t "), accepted=[f"{M}/a"]),
    Case("no-break-space-trimmed", text(f"\u00a0{M}/a\u00a0"), accepted=[f"{M}/a"]),
    Case("no-final-newline", f"{M}/a".encode(), accepted=[f"{M}/a"]),
    Case("trailing-star-date-prefix", text(f"{M}/2411*"), accepted=[f"{M}/2411*"]),
    Case("everything-under-a-root", text(f"{M}/*"), accepted=[f"{M}/*"]),
    Case("a-root-itself", text(f"{N}/"), accepted=[f"{N}/"]),
    Case(
        "root-sharing-a-prefix",
        text("/sequencers/incoming/nextseq2000/run"),
        accepted=["/sequencers/incoming/nextseq2000/run"],
    ),
    Case("non-ascii-name", text(f"{M}/Müller_run"), accepted=[f"{M}/Müller_run"]),
    Case("percent-encoding-is-literal", text(f"{M}/%2e%2e/%2e%2e/etc"), accepted=[f"{M}/%2e%2e/%2e%2e/etc"]),
    Case("over-long-line", text(f"{M}/" + "x" * 5000), rejected=[(1, "longer than 4096 characters")]),
    Case(
        "over-long-line-among-good-ones",
        text(f"{M}/a", f"{M}/" + "y" * 4096, f"{M}/b"),
        accepted=[f"{M}/a", f"{M}/b"],
        rejected=[(2, "longer than 4096")],
    ),
    Case(
        "too-many-lines",
        text(*(f"{M}/run{i}" for i in range(6))),
        rejected=[(6, "more than 5 path lines")],
        limits=ManifestLimits(max_lines=5),
    ),
    Case(
        "comments-do-not-count-towards-the-line-limit",
        text("# one", "# two", *(f"{M}/run{i}" for i in range(5))),
        accepted=[f"{M}/run{i}" for i in range(5)],
        limits=ManifestLimits(max_lines=5),
    ),
    Case(
        "too-large",
        text(f"{M}/" + "z" * 100),
        rejected=[(WHOLE_MANIFEST, "larger than the limit of 100 bytes")],
        limits=ManifestLimits(max_bytes=100),
    ),
    Case("empty-file", b"", rejected=[(WHOLE_MANIFEST, "no path lines")]),
    Case("only-comments", text("# nothing", "#", "  # really nothing"), rejected=[(0, "no path lines")]),
    Case("utf16-with-bom", f"{M}/a\n".encode("utf-16"), rejected=[(WHOLE_MANIFEST, "UTF-16 or UTF-32")]),
    Case(
        "latin1-bytes",
        f"{M}/a\n".encode() + b"/sequencers/incoming/miseq/caf\xe9\n",
        accepted=[f"{M}/a"],
        rejected=[(2, "not valid UTF-8")],
    ),
    Case("old-mac-line-endings", f"{M}/a\r{M}/b\r".encode(), rejected=[(1, "carriage return inside a line")]),
    Case(
        "binary-garbage",
        bytes(range(256)) * 3,
        rejected=[(1, "NUL character"), (2, "not valid UTF-8"), (3, "not valid UTF-8"), (4, "not valid UTF-8")],
    ),
    Case(
        "mixed-valid-and-invalid",
        text(
            "# outage 2024-11-25",
            f"{M}/{RUN}",
            f"{M}/../../etc/passwd",
            f"{N}/241125_NB551234_0042_AHJF77DRX5/",
            f"{M}/a|/etc",
            "/home/someone/.ssh",
            f"{N}/2411*",
            f"{M}/*/Data",
            f"{M}/{RUN}",
        ),
        accepted=[f"{M}/{RUN}", f"{N}/241125_NB551234_0042_AHJF77DRX5/", f"{N}/2411*"],
        rejected=[(3, DOTS), (5, "'|' not allowed"), (6, OUTSIDE), (8, STAR)],
        duplicates=[9],
    ),
]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_manifest(case: Case) -> None:
    # GIVEN a manifest from the table
    # WHEN it is parsed against the default sequencer roots
    parsed = parse_manifest(case.data, ROOTS, case.limits)

    # THEN exactly the expected lines are accepted, and every rejection names its line and reason
    assert parsed.patterns == case.accepted
    assert [r.line for r in parsed.rejected] == [line for line, _ in case.rejected]
    for (line, fragment), rejection in zip(case.rejected, parsed.rejected, strict=True):
        assert rejection.line == line
        assert fragment in rejection.reason
    assert [d.line for d in parsed.duplicates] == case.duplicates
    check_invariants(case.data, parsed, ROOTS)
    expected_status = "rejected" if not case.accepted else ("partially_accepted" if case.rejected else "accepted")
    assert parsed.status == expected_status


# -- property: whatever the bytes, nothing outside the roots is accepted and no path line is lost -------------

_FRAGMENTS = [
    *ROOTS,
    "/sequencers",
    "/sequencers/incoming",
    "/sequencers/incoming/mi",
    "/",
    "//",
    "/.",
    "/..",
    "..",
    ".",
    "*",
    "|",
    "\\",
    "#",
    " ",
    "\t",
    "\r",
    "\x00",
    "\x1b",
    "\x85",
    "\u200b",
    "\u2028",
    "\ufeff",
    "\uff0f",
    "-old",
    "2000",
    "run",
    "é",
]
_line = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=3)), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line, max_size=12), crlf=st.booleans(), bom=st.booleans())
def test_no_accepted_pattern_is_ever_outside_the_roots(lines: list[str], crlf: bool, bom: bool) -> None:
    # GIVEN any manifest built from path-like fragments and arbitrary text
    data = (codecs.BOM_UTF8 if bom else b"") + ("\r\n" if crlf else "\n").join(lines).encode(
        "utf-8", errors="surrogatepass"
    )

    # WHEN it is parsed
    parsed = parse_manifest(data, ROOTS)

    # THEN every accepted pattern only selects files under a root, and every path line is accounted for
    check_invariants(data, parsed, ROOTS)
    if parsed.rejected and parsed.rejected[0].line == WHOLE_MANIFEST:
        assert not parsed.accepted
        return
    accounted = (
        {a.line for a in parsed.accepted} | {r.line for r in parsed.rejected} | {d.line for d in parsed.duplicates}
    )
    for number, raw in enumerate(data.removeprefix(codecs.BOM_UTF8).split(b"\n"), start=1):
        try:
            entry = trimmed(raw.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError:
            assert number in accounted
            continue
        if entry and not entry.startswith("#"):
            assert number in accounted, (number, entry)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_never_escape(data: bytes) -> None:
    # GIVEN arbitrary bytes / WHEN parsed / THEN no exception and no pattern outside the roots
    parsed = parse_manifest(data, ROOTS)
    check_invariants(data, parsed, ROOTS)
