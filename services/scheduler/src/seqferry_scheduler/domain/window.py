"""Transfer windows: which run folders a tick asks the executor to look at.

A tick is a whole multiple of the interval since the Unix epoch (UTC), so every replica computes the same tick
numbers from its clock. The window of a tick covers the ``transfer_days`` calendar dates of the lab that end on
the tick's date, from local midnight of the oldest one to the tick's instant. Dates are lab dates, not UTC dates:
a run folder named after its local start date (instruments use the local clock) is included as soon as it
exists, even when UTC is still on the previous day.

The include patterns keep the reference's shape and order: for each sequencer path, for each date from the
newest, ``<path>/<date>*``; then the ad-hoc folder; DataSync joins them with ``|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from seqferry_shared.sequencers import SequencerPath

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    tick: int
    start: datetime
    """Local midnight (lab time zone) of the oldest date in the window."""
    end: datetime
    """The tick's instant, expressed in the lab time zone."""
    time_zone: str
    dates: tuple[date, ...]
    """Lab dates covered, newest first."""
    includes: tuple[str, ...]

    @property
    def include_string(self) -> str:
        """The value DataSync receives in one ``FilterRule`` (before any split)."""
        return "|".join(self.includes)


def interval_seconds(interval: timedelta) -> int:
    seconds = interval.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"interval must be a whole number of seconds, at least 1 (got {seconds} s)")
    return int(seconds)


def tick_of(instant: datetime, interval: timedelta) -> int:
    """Number of the last tick at or before ``instant``."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    elapsed = instant - EPOCH
    return int(elapsed.total_seconds() // interval_seconds(interval))


def tick_instant(tick: int, interval: timedelta) -> datetime:
    return EPOCH + timedelta(seconds=tick * interval_seconds(interval))


def window_dates(instant: datetime, zone: ZoneInfo, days: int) -> tuple[date, ...]:
    """The ``days`` lab dates ending on the lab date of ``instant``, newest first.

    Calendar arithmetic on dates, not 24-hour steps on instants, so a 23- or 25-hour day at a DST change never
    skips or repeats a date.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    today = instant.astimezone(zone).date()
    return tuple(today - timedelta(days=offset) for offset in range(days))


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """Start of ``day`` in ``zone``; where midnight does not exist (DST at 00:00), the first instant after it.

    With ``fold=0`` a wall time in a DST gap takes the offset from before the change (PEP 495), so the round
    trip through UTC lands on the first wall time that exists; an ambiguous midnight resolves to its first
    occurrence.
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC).astimezone(zone)


def build_includes(
    sequencers: Sequence[SequencerPath],
    dates: Sequence[date],
    *,
    adhoc_path: str | None,
) -> tuple[str, ...]:
    """``<path>/<date>*`` for each path and date (the instrument's date format), then the ad-hoc folder."""
    includes: list[str] = []
    for sequencer in sequencers:
        root = sequencer.path.rstrip("/")
        for day in dates:
            pattern = f"{root}/{day.strftime(sequencer.date_format)}*"
            if pattern not in includes:
                includes.append(pattern)
    if adhoc_path:
        includes.append(adhoc_path)
    return tuple(includes)


def compute_window(
    instant: datetime,
    *,
    tick: int,
    zone: ZoneInfo,
    days: int,
    sequencers: Sequence[SequencerPath],
    adhoc_path: str | None,
) -> Window:
    dates = window_dates(instant, zone, days)
    return Window(
        tick=tick,
        start=local_midnight(dates[-1], zone),
        end=instant.astimezone(zone),
        time_zone=zone.key,
        dates=dates,
        includes=build_includes(sequencers, dates, adhoc_path=adhoc_path),
    )
