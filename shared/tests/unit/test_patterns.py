import pytest

from seqferry_shared.patterns import (
    FILTER_VALUE_LIMIT,
    Matcher,
    PatternError,
    join_filter,
    match,
    split_filter,
    validate_pattern,
)

ROOTS = ["/sequencers/incoming/miseq", "/sequencers/incoming/novaseq", "/adhoc"]


@pytest.mark.parametrize(
    "pattern",
    [
        "/sequencers/incoming/miseq",
        "/sequencers/incoming/miseq/",
        "/sequencers/incoming/miseq/251125*",
        "/sequencers/incoming/miseq/*",
        "/sequencers/incoming/novaseq/251125_A01934_0157_BHJF77DRX5/InterOp/",
        "/adhoc",
    ],
)
def test_accepts_safe_patterns_under_roots(pattern: str) -> None:
    assert validate_pattern(pattern, ROOTS) == pattern


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "empty"),
        ("sequencers/incoming/miseq", "absolute"),
        ("/sequencers/incoming/miseq/../../etc", "'..'"),
        ("/sequencers/incoming/miseq/./x", "'.'"),
        ("/sequencers//incoming/miseq", "empty path segment"),
        ("/sequencers/incoming/miseq/a|/etc", "'|'"),
        ("/sequencers/incoming/mi*/x", "only as the last"),
        ("/sequencers/incoming/miseq/x\x00", "NUL"),
        ("/sequencers/incoming/miseq/\x1b[31m", "control"),
        ("/sequencers/incoming/miseq/\u202ex", "control"),
        ("C:\\runs\\x", "backslash"),
        ("/sequencers/incoming/miseq-old/x", "outside"),
        ("/sequencers/incoming/miseq*", "outside"),
        ("/sequencers/incoming/mi*", "outside"),
        ("/sequencers/*", "outside"),
        ("/*", "outside"),
        ("/etc/passwd", "outside"),
        ("/" + "a" * 5000, "longer"),
        ("/sequencers/incoming/miseq/\ud800", "lone surrogate"),
        ("/sequencers/incoming/miseq/run\udcff/x", "lone surrogate"),
        ("/sequencers/incoming/miseq/" + "n" * 256, "256 bytes"),
        ("/sequencers/incoming/miseq/" + "\u00e9" * 128 + "/x", "256 bytes"),
        ("/sequencers/incoming/miseq/" + "n" * 256 + "*", "256 bytes"),
    ],
)
def test_rejects_with_reason(pattern: str, reason: str) -> None:
    # GIVEN a hostile or malformed pattern / WHEN validated / THEN the reason says what is wrong
    with pytest.raises(PatternError) as info:
        validate_pattern(pattern, ROOTS)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/runs/a", "/runs/a", True),
        ("/runs/a", "/runs/a/x/y.bcl", True),
        ("/runs/a/", "/runs/a/x", True),
        ("/runs/a", "/runs/ab", False),
        ("/runs/a*", "/runs/ab/x", True),
        ("/runs/2511*", "/runs/251125_M1/RunInfo.xml", True),
        ("/runs/2511*", "/runs/251025_M1/RunInfo.xml", False),
        ("/", "/anything", True),
        ("/adhoc", "/adhoc/list.txt", True),
    ],
)
def test_datasync_include_semantics(pattern: str, path: str, expected: bool) -> None:
    assert match(pattern, path) is expected


def test_matcher_prunes_walk() -> None:
    matcher = Matcher.of(["/seq/miseq/2511*", "/adhoc"])
    assert matcher.may_contain("/seq")
    assert matcher.may_contain("/seq/miseq")
    assert matcher.may_contain("/seq/miseq/251125_run")
    assert not matcher.may_contain("/seq/novaseq")
    assert not matcher.may_contain("/other")


def test_split_never_cuts_a_pattern() -> None:
    # GIVEN patterns whose joined value is one character over the limit
    patterns = ["/p/" + "x" * 1020] * 99  # 99 x 1023 characters + 98 separators = 101,375
    patterns.append("/q/" + "y" * 1022)  # + 1 separator + 1,025 characters = 102,401
    assert len(join_filter(patterns)) == FILTER_VALUE_LIMIT + 1
    # WHEN split / THEN two groups, each within the limit, every pattern intact and in order
    groups = split_filter(patterns)
    assert len(groups) == 2
    assert all(len(join_filter(g)) <= FILTER_VALUE_LIMIT for g in groups)
    assert [p for g in groups for p in g] == patterns


def test_split_rejects_a_single_pattern_over_the_limit() -> None:
    with pytest.raises(PatternError):
        split_filter(["/" + "z" * FILTER_VALUE_LIMIT])


def test_a_255_byte_name_is_a_name() -> None:
    # GIVEN the longest name a POSIX filesystem holds (255 bytes, here multibyte) / THEN it is accepted
    name = "\u00e9" * 127 + "x"
    assert len(name.encode()) == 255
    assert validate_pattern(f"/sequencers/incoming/miseq/{name}", ROOTS)
