"""The simulator's error family."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose."""


class SpecError(SimulatorError, ValueError):
    """A run request or setting is invalid; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CapacityError(SimulatorError):
    """No instrument is free to start another run right now."""
