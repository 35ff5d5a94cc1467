"""``seqferry-scheduler``: build the settings, configure logging, serve."""

from __future__ import annotations

from seqferry_scheduler.app import create_app
from seqferry_scheduler.settings import SchedulerSettings
from seqferry_shared.http import serve
from seqferry_shared.runtime import configure_logging


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(settings, "scheduler")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
