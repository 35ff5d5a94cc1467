"""Scheduler settings from the environment: durations, task lists, time zones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from seqferry_scheduler.domain.durations import parse_duration
from seqferry_scheduler.settings import SchedulerSettings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20m", timedelta(minutes=20)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1200", timedelta(seconds=1200)),
        ("PT20M", timedelta(minutes=20)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        (2, timedelta(seconds=2)),
    ],
)
def test_durations(text: object, expected: timedelta):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "20 minutes", "m", "PT", "-5s", True])
def test_bad_durations_name_the_accepted_forms(text: object):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_defaults_match_the_reference(monkeypatch: pytest.MonkeyPatch):
    # GIVEN no scheduler variables in the environment
    for name in ("SEQFERRY_INTERVAL", "SEQFERRY_TASKS", "SEQFERRY_LAB_TIME_ZONE", "SEQFERRY_TRANSFER_DAYS"):
        monkeypatch.delenv(name, raising=False)

    settings = SchedulerSettings()

    assert settings.interval == timedelta(minutes=20)
    assert settings.transfer_days == 3
    assert settings.lab_time_zone == "UTC"
    assert settings.tasks == ["sequencers"]
    assert settings.include_adhoc is True
    assert settings.http_port == 8081


def test_environment_values(monkeypatch: pytest.MonkeyPatch):
    # GIVEN comma-separated tasks, a seconds interval (local backend), a lab time zone
    monkeypatch.setenv("SEQFERRY_TASKS", "sequencers, archive")
    monkeypatch.setenv("SEQFERRY_INTERVAL", "2s")
    monkeypatch.setenv("SEQFERRY_LAB_TIME_ZONE", "Australia/Brisbane")
    monkeypatch.setenv("SEQFERRY_INCLUDE_ADHOC", "false")

    settings = SchedulerSettings()

    assert settings.tasks == ["sequencers", "archive"]
    assert settings.interval == timedelta(seconds=2)
    assert settings.zone.key == "Australia/Brisbane"
    assert settings.include_adhoc is False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lab_time_zone", "Mars/Olympus", "unknown IANA time zone"),
        ("interval", "0.5s", "whole number of seconds"),
        ("tasks", "a,a", "unique"),
        ("tasks", "bad name", "task name"),
        ("adhoc_path", "adhoc", "absolute"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(field: str, value: str, message: str):
    with pytest.raises(ValidationError, match=message):
        SchedulerSettings(**{field: value})
