"""Human-friendly durations for settings: ``20m``, ``90s``, ``1h30m``, ``1200`` (seconds) or ISO 8601 ``PT20M``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_COMPACT = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raises ValueError naming the accepted forms."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"cannot read a duration from {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return timedelta(seconds=float(text))
    for pattern, candidate in ((_COMPACT, text.lower()), (_ISO, text.upper())):
        match = pattern.fullmatch(candidate)
        if match and any(match.groups()):
            days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise ValueError(f"invalid duration {value!r}: use e.g. '20m', '90s', '1h30m', '1200' (seconds) or 'PT20M'")
