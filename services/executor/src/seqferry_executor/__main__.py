"""``seqferry-executor``: build the settings, configure logging, serve."""

from __future__ import annotations

from seqferry_executor.app import create_app
from seqferry_executor.settings import ExecutorSettings
from seqferry_shared.http import serve
from seqferry_shared.runtime import configure_logging


def main() -> None:
    settings = ExecutorSettings()
    configure_logging(settings, "executor")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
