"""How fast a simulated run unfolds: the real cadence, or a number of cycles per second."""

from __future__ import annotations

import math
from dataclasses import dataclass

from seqferry_simulator.domain.errors import SpecError
from seqferry_simulator.domain.profiles import Cadence

REALISTIC = "realistic"
MAX_CYCLES_PER_SECOND = 1000.0


@dataclass(frozen=True, slots=True)
class Pace:
    clustering_s: float
    seconds_per_cycle: float
    finish_s: float

    @classmethod
    def of(cls, value: str | float, cadence: Cadence, *, field: str = "pace") -> Pace:
        """``"realistic"`` follows the instrument's real cadence; a number is cycles per second."""
        if isinstance(value, str) and value.strip().lower() == REALISTIC:
            return cls(cadence.clustering_s, cadence.seconds_per_cycle, cadence.finish_s)
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise SpecError(field, f"expected 'realistic' or cycles per second, got {value!r}") from None
        if not math.isfinite(rate) or not 0 < rate <= MAX_CYCLES_PER_SECOND:
            raise SpecError(field, f"cycles per second must be above 0 and at most {MAX_CYCLES_PER_SECOND:g}")
        period = 1.0 / rate
        # Clustering and the end-of-run markers keep their order and take a couple of cycles' worth of time.
        return cls(clustering_s=2 * period, seconds_per_cycle=period, finish_s=2 * period)

    def duration(self, cycles: int) -> float:
        return self.clustering_s + cycles * self.seconds_per_cycle + self.finish_s


def check_pace(value: str | float, *, field: str = "pace") -> str:
    """Validate a pace setting without an instrument at hand; returns it normalised."""
    Pace.of(value, Cadence(1.0, 1.0, 1.0), field=field)
    return str(value).strip().lower()
