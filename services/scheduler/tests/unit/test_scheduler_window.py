"""Window computation with fixed clocks: reference format, lab time zone, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from seqferry_scheduler.domain.window import (
    build_includes,
    compute_window,
    local_midnight,
    tick_instant,
    tick_of,
    window_dates,
)
from seqferry_shared.patterns import Matcher, match, split_filter, validate_pattern
from seqferry_shared.sequencers import DEFAULT_SEQUENCER_PATHS, parse_sequencer_paths

REFERENCE_PATHS = parse_sequencer_paths(DEFAULT_SEQUENCER_PATHS)
TWENTY_MINUTES = timedelta(minutes=20)


def window_at(instant: datetime, zone: str = "UTC", days: int = 3, paths: str = DEFAULT_SEQUENCER_PATHS):
    return compute_window(
        instant,
        tick=tick_of(instant, TWENTY_MINUTES),
        zone=ZoneInfo(zone),
        days=days,
        sequencers=parse_sequencer_paths(paths),
        adhoc_path="/adhoc",
    )


def test_reference_default_paths_give_the_reference_include_string():
    # GIVEN the reference's four default paths, 3 transfer days, UTC, a fixed clock
    instant = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)

    # WHEN the window is computed
    window = window_at(instant)

    # THEN the include string has the reference's shape and order: path-major, newest date first, iSeq with a
    # 4-digit year, the others with 2 digits, then /adhoc
    assert window.include_string == (
        "/sequencers/incoming/iseq/20241125*|/sequencers/incoming/iseq/20241124*|"
        "/sequencers/incoming/iseq/20241123*|"
        "/sequencers/incoming/nextseq/241125*|/sequencers/incoming/nextseq/241124*|"
        "/sequencers/incoming/nextseq/241123*|"
        "/sequencers/incoming/miseq/241125*|/sequencers/incoming/miseq/241124*|"
        "/sequencers/incoming/miseq/241123*|"
        "/sequencers/incoming/nextseq2000/241125*|/sequencers/incoming/nextseq2000/241124*|"
        "/sequencers/incoming/nextseq2000/241123*|"
        "/adhoc"
    )
    assert window.time_zone == "UTC"
    assert window.start == datetime(2024, 11, 23, tzinfo=UTC)
    assert window.end == instant


def test_every_pattern_is_valid_under_the_configured_roots_and_fits_one_filter():
    window = window_at(datetime(2024, 11, 25, 12, 0, tzinfo=UTC))
    roots = [p.path for p in REFERENCE_PATHS] + ["/adhoc"]

    for pattern in window.includes:
        assert validate_pattern(pattern, roots) == pattern
    assert split_filter(window.includes) == [list(window.includes)]


def test_run_folder_started_at_nine_in_utc_plus_10_is_included_immediately():
    # GIVEN a lab in UTC+10 (no DST) whose MiSeq starts a run at 09:00 local on 26 Nov: still 25 Nov in UTC
    started = datetime(2024, 11, 26, 9, 0, tzinfo=ZoneInfo("Australia/Brisbane"))
    run_file = "/sequencers/incoming/miseq/241126_M00123_0001_000000000-ABCDE/RunInfo.xml"
    first_tick = tick_of(started, TWENTY_MINUTES) + 1
    instant = tick_instant(first_tick, TWENTY_MINUTES)
    assert instant.date() == date(2024, 11, 25)

    # WHEN the first tick after the folder appears computes its window in the lab's time zone
    lab = window_at(instant, zone="Australia/Brisbane")

    # THEN the run folder is included, where a UTC-dated window (the reference) would miss it until UTC midnight
    assert "/sequencers/incoming/miseq/241126*" in lab.includes
    assert Matcher.of(lab.includes).matches(run_file)
    assert not Matcher.of(window_at(instant, zone="UTC").includes).matches(run_file)
    assert lab.end.utcoffset() == timedelta(hours=10)


def test_nine_oclock_in_a_dst_zone_at_utc_plus_10_too():
    # GIVEN Sydney in winter (AEST, UTC+10): the same 09:00 rule holds in a zone that has DST
    started = datetime(2024, 7, 2, 9, 0, tzinfo=ZoneInfo("Australia/Sydney"))
    assert started.utcoffset() == timedelta(hours=10)
    instant = tick_instant(tick_of(started, TWENTY_MINUTES) + 1, TWENTY_MINUTES)

    window = window_at(instant, zone="Australia/Sydney")

    assert "/sequencers/incoming/nextseq/240702*" in window.includes


@pytest.mark.parametrize(
    ("zone", "utc_instant", "expected"),
    [
        # New York springs forward on 10 Mar 2024 (a 23-hour day): 00:30 EDT on 11 Mar is 04:30 UTC.
        ("America/New_York", datetime(2024, 3, 11, 4, 30, tzinfo=UTC), ["240311", "240310", "240309"]),
        # ... and falls back on 3 Nov 2024 (a 25-hour day): 23:30 EST on 3 Nov is 04:30 UTC on 4 Nov.
        ("America/New_York", datetime(2024, 11, 4, 4, 30, tzinfo=UTC), ["241103", "241102", "241101"]),
        # Berlin, 00:30 CET on 31 Mar (the DST day) is still 30 Mar in UTC.
        ("Europe/Berlin", datetime(2024, 3, 30, 23, 30, tzinfo=UTC), ["240331", "240330", "240329"]),
        # Berlin, during the repeated hour of 27 Oct (02:30 CET, second occurrence).
        ("Europe/Berlin", datetime(2024, 10, 27, 1, 30, tzinfo=UTC), ["241027", "241026", "241025"]),
        # Sydney springs forward on 6 Oct 2024 at 02:00: 00:30 AEST is 14:30 UTC on 5 Oct.
        ("Australia/Sydney", datetime(2024, 10, 5, 14, 30, tzinfo=UTC), ["241006", "241005", "241004"]),
    ],
)
def test_dst_changes_neither_skip_nor_repeat_a_date(zone: str, utc_instant: datetime, expected: list[str]):
    # WHEN the window dates are computed across a DST change
    dates = window_dates(utc_instant, ZoneInfo(zone), 3)

    # THEN they are consecutive calendar dates, newest first
    assert [d.strftime("%y%m%d") for d in dates] == expected


def test_24_hour_steps_would_have_skipped_a_date_on_the_dst_day():
    # GIVEN 00:30 EDT on 11 Mar 2024, right after New York's 23-hour day
    zone = ZoneInfo("America/New_York")
    instant = datetime(2024, 3, 11, 4, 30, tzinfo=UTC)

    # THEN stepping back 24 hours of real time lands on 9 Mar (the naive approach), calendar steps on 10 Mar
    assert (instant - timedelta(hours=24)).astimezone(zone).date() == date(2024, 3, 9)
    assert window_dates(instant, zone, 2)[1] == date(2024, 3, 10)


def test_window_start_is_local_midnight_across_dst():
    # GIVEN a window ending on 1 Apr 2024 in Berlin: its oldest date (30 Mar) is still winter time
    window = window_at(datetime(2024, 4, 1, 10, 0, tzinfo=UTC), zone="Europe/Berlin")

    assert window.start == datetime(2024, 3, 30, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert window.start.utcoffset() == timedelta(hours=1)
    assert window.end.utcoffset() == timedelta(hours=2)
    # 30 Mar 00:00 CET to 1 Apr 12:00 CEST: 60 wall-clock hours, one of which never happened.
    assert window.end.astimezone(UTC) - window.start.astimezone(UTC) == timedelta(hours=59)


def test_midnight_that_does_not_exist_starts_at_the_first_real_instant():
    # Chile springs forward at 00:00 on 8 Sep 2024: the day begins at 01:00 -03.
    start = local_midnight(date(2024, 9, 8), ZoneInfo("America/Santiago"))

    assert start.hour == 1
    assert start.utcoffset() == timedelta(hours=-3)


def test_tagged_instruments_choose_the_date_format():
    # GIVEN paths tagged with their instrument (NovaSeq X names runs with a 4-digit year, NovaSeq 6000 with 2)
    paths = "/sequencers/x=novaseqx,/sequencers/n6k=novaseq6000,/sequencers/i100=iseq100"

    window = window_at(datetime(2025, 1, 2, 8, 0, tzinfo=UTC), days=2, paths=paths)

    assert window.includes == (
        "/sequencers/x/20250102*",
        "/sequencers/x/20250101*",
        "/sequencers/n6k/250102*",
        "/sequencers/n6k/250101*",
        "/sequencers/i100/20250102*",
        "/sequencers/i100/20250101*",
        "/adhoc",
    )


def test_adhoc_left_out_when_disabled_and_transfer_days_honoured():
    includes = build_includes(REFERENCE_PATHS[:1], [date(2024, 1, 2)], adhoc_path=None)

    assert includes == ("/sequencers/incoming/iseq/20240102*",)
    assert len(window_at(datetime(2024, 1, 2, tzinfo=UTC), days=5).dates) == 5


@pytest.mark.parametrize(
    ("instant", "interval", "tick"),
    [
        (datetime(1970, 1, 1, 0, 20, tzinfo=UTC), TWENTY_MINUTES, 1),
        (datetime(1970, 1, 1, 0, 39, 59, tzinfo=UTC), TWENTY_MINUTES, 1),
        (datetime(2024, 11, 25, 12, 0, tzinfo=UTC), TWENTY_MINUTES, 1_443_780),
        (datetime(2024, 11, 25, 12, 0, 1, tzinfo=UTC), timedelta(seconds=2), 866_268_000),
    ],
)
def test_ticks_are_interval_multiples_since_the_epoch(instant: datetime, interval: timedelta, tick: int):
    assert tick_of(instant, interval) == tick
    assert tick_instant(tick, interval) <= instant < tick_instant(tick + 1, interval)


def test_tick_number_does_not_depend_on_the_offset_of_the_clock():
    utc = datetime(2024, 11, 25, 23, 20, tzinfo=UTC)

    assert tick_of(utc.astimezone(ZoneInfo("Australia/Brisbane")), TWENTY_MINUTES) == tick_of(utc, TWENTY_MINUTES)
    with pytest.raises(ValueError, match="timezone-aware"):
        tick_of(utc.replace(tzinfo=None), TWENTY_MINUTES)


def test_miniseq_and_hiseq_paths_get_six_digit_windows():
    # GIVEN the folders whose names once matched 'iseq' by substring (and got 8-digit dates)
    paths = "/sequencers/incoming/miniseq,/sequencers/incoming/hiseq4000,/sequencers/incoming/hs=hiseq2500"

    window = window_at(datetime(2025, 11, 25, 8, 0, tzinfo=UTC), days=2, paths=paths)

    # THEN each is matched by its own instrument's 6-digit run-folder date
    assert window.includes == (
        "/sequencers/incoming/miniseq/251125*",
        "/sequencers/incoming/miniseq/251124*",
        "/sequencers/incoming/hiseq4000/251125*",
        "/sequencers/incoming/hiseq4000/251124*",
        "/sequencers/incoming/hs/251125*",
        "/sequencers/incoming/hs/251124*",
        "/adhoc",
    )
    # AND the patterns reach real run folders of those instruments started that day
    assert match(window.includes[0], "/sequencers/incoming/miniseq/251125_MN00302_0284_A000H2VKFF")
    assert match(window.includes[2], "/sequencers/incoming/hiseq4000/251125_K00150_0123_BHJV2FBBXX")
