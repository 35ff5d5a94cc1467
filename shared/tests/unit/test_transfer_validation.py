"""Validation of Transfer Requested / Transfer Window Opened patterns: every rejection names the bad pattern."""

from __future__ import annotations

import pytest

from seqferry_shared.settings import ServiceSettings
from seqferry_shared.validation import Accepted, Rejected, validate_transfer

ROOTS = ["/sequencers/incoming/iseq", "/sequencers/incoming/miseq", "/adhoc"]


def check(includes: list[str], task: str | None = None, known: set[str] | None = None):
    return validate_transfer(task=task, includes=includes, roots=ROOTS, default_task="sequencers", known_tasks=known)


def test_valid_patterns_are_accepted_once_each_in_order():
    verdict = check(
        [
            "/sequencers/incoming/miseq/241125_M00123_0001_000000000-ABCDE/",
            "/sequencers/incoming/iseq/20241125*",
            "/adhoc",
            "/sequencers/incoming/iseq/20241125*",
        ]
    )

    assert verdict == Accepted(
        task="sequencers",
        includes=(
            "/sequencers/incoming/miseq/241125_M00123_0001_000000000-ABCDE/",
            "/sequencers/incoming/iseq/20241125*",
            "/adhoc",
        ),
    )


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("sequencers/incoming/miseq/x", "absolute"),
        ("/sequencers/incoming/miseq/../../etc", "'..'"),
        ("/sequencers/incoming/miseq/./x", "'.'"),
        ("/sequencers/incoming/miseq/a|/etc", "'|'"),
        ("/sequencers/incoming/miseq/a\x00b", "NUL"),
        ("/sequencers/incoming/miseq/a\nb", "control"),
        ("/sequencers/incoming/miseq/a\u202eb", "control"),
        ("/sequencers/incoming/miseq/24*/x", "last character"),
        ("/sequencers/incoming/miseq//x", "empty path segment"),
        ("/etc/passwd", "outside the allowed roots"),
        ("/sequencers/incoming/miseq-old/x", "outside the allowed roots"),
        ("/sequencers/incoming/mi*", "outside the allowed roots"),
        ("/*", "outside the allowed roots"),
        ("", "empty"),
    ],
)
def test_each_bad_pattern_rejects_the_request_and_is_named(pattern: str, reason: str):
    # GIVEN one good and one bad pattern
    verdict = check(["/sequencers/incoming/miseq/241125*", pattern])

    # THEN the whole request is rejected (never half-transferred), the reason names the pattern (escaped)
    assert isinstance(verdict, Rejected)
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("include #2 '")
    assert reason in verdict.reasons[0]
    assert "\x00" not in verdict.message
    assert "\n" not in verdict.message


def test_every_bad_pattern_is_reported():
    verdict = check(["/etc/a", "/sequencers/incoming/miseq/ok", "relative", "/adhoc/../x"])

    assert isinstance(verdict, Rejected)
    assert [r.split("'")[0] for r in verdict.reasons] == ["include #1 ", "include #3 ", "include #4 "]


def test_unknown_task_is_rejected_when_the_backend_knows_its_tasks():
    verdict = check(["/adhoc"], task="ghost", known={"sequencers"})

    assert isinstance(verdict, Rejected)
    assert verdict.task == "ghost"
    assert "unknown task 'ghost' (configured: sequencers)" in verdict.message
    assert isinstance(check(["/adhoc"], task="anything", known=None), Accepted)


def test_reasons_are_bounded():
    verdict = check([f"/etc/{i}" for i in range(50)])

    assert isinstance(verdict, Rejected)
    assert len(verdict.reasons) == 21
    assert verdict.reasons[-1] == "... and 30 more invalid include(s)"


@pytest.mark.parametrize("task", ["bad name", "x" * 129, "tâche", "a/b"])
def test_task_names_are_checked_even_when_any_task_is_allowed(task: str):
    verdict = check(["/adhoc"], task=task, known=None)

    assert isinstance(verdict, Rejected)
    assert "task name" in verdict.message


def test_extra_adhoc_roots_from_the_shared_setting_are_accepted(monkeypatch):
    # GIVEN the one shared setting adhoc also reads
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/seq/miseq=miseq")
    monkeypatch.setenv("SEQFERRY_ADHOC_EXTRA_ROOTS", "/one-off/hiseq")
    settings = ServiceSettings(environment="test")
    assert settings.roots == ["/seq/miseq", "/one-off/hiseq", "/adhoc"]
    # THEN a request for a path there is valid, one beside it is not
    verdict = validate_transfer(
        task=None,
        includes=["/one-off/hiseq/170101_K00150_0123_BHJV2FBBXX", "/one-off/other"],
        roots=settings.roots,
        default_task="sequencers",
        known_tasks=None,
    )
    assert isinstance(verdict, Rejected)
    assert verdict.reasons == (
        "include #2 '/one-off/other': path is outside the allowed roots /seq/miseq, /one-off/hiseq, /adhoc",
    )
