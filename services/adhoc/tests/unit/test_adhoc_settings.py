"""Settings: the allowed roots default to the sequencer paths; unsafe roots are refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from seqferry_adhoc.settings import AdhocSettings


def test_defaults() -> None:
    settings = AdhocSettings(environment="test", sequencer_paths="/seq/miseq=miseq,/seq/nova=novaseq6000")
    assert settings.http_port == 8083
    assert settings.allowed_roots == ["/seq/miseq", "/seq/nova"]
    limits = settings.manifest_limits
    assert (limits.max_bytes, limits.max_lines, limits.max_line_length) == (1_048_576, 10_000, 4_096)


def test_roots_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/seq/miseq=miseq,/seq/nova=novaseq6000")
    monkeypatch.setenv("SEQFERRY_ADHOC_EXTRA_ROOTS", "/archive/restore")
    monkeypatch.setenv("SEQFERRY_ADHOC_ALLOWED_ROOTS", " /seq/miseq/ , /archive/restore,/seq/miseq")
    monkeypatch.setenv("SEQFERRY_ADHOC_MAX_LINES", "50")
    settings = AdhocSettings(environment="test")
    assert settings.allowed_roots == ["/seq/miseq", "/archive/restore"]
    assert settings.manifest_limits.max_lines == 50


def test_extra_roots_widen_the_default_once_for_adhoc_and_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN one shared setting naming a one-off instrument's folder
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/seq/miseq=miseq")
    monkeypatch.setenv("SEQFERRY_ADHOC_EXTRA_ROOTS", "/one-off/hiseq")
    # THEN adhoc accepts paths there by default (the executor reads the same variable: its own test)
    assert AdhocSettings(environment="test").allowed_roots == ["/seq/miseq", "/one-off/hiseq"]


def test_allowed_roots_the_executor_would_refuse_stop_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/seq/miseq=miseq")
    with pytest.raises(ValidationError, match="/archive/restore is not under a sequencer path"):
        AdhocSettings(environment="test", adhoc_allowed_roots="/seq/miseq,/archive/restore")


@pytest.mark.parametrize(
    ("roots", "message"),
    [
        ("/", "whole NAS"),
        ("/seq,/", "whole NAS"),
        ("seq/miseq", "absolute"),
        ("/seq/../etc", "'..'"),
        ("/seq/mi*", "not a pattern"),
        (" , ", "names no folder"),
        ("/seq|/etc", "'|'"),
    ],
)
def test_unsafe_roots_are_refused(roots: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AdhocSettings(environment="test", adhoc_allowed_roots=roots)


def test_limits_are_bounded() -> None:
    with pytest.raises(ValidationError):
        AdhocSettings(environment="test", adhoc_max_line_length=10_000)
    with pytest.raises(ValidationError):
        AdhocSettings(environment="test", adhoc_max_request_bytes=1_000_000)
