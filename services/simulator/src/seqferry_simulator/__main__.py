"""``seqferry-simulator``: build the settings, configure logging, serve."""

from __future__ import annotations

from seqferry_shared.http import serve
from seqferry_shared.runtime import configure_logging
from seqferry_simulator.app import create_app
from seqferry_simulator.settings import SimulatorSettings


def main() -> None:
    settings = SimulatorSettings()
    configure_logging(settings, "simulator")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
