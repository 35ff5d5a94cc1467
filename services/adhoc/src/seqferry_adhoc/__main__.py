"""``seqferry-adhoc``: build the settings, configure logging, serve."""

from __future__ import annotations

from seqferry_adhoc.app import create_app
from seqferry_adhoc.settings import AdhocSettings
from seqferry_shared.http import serve
from seqferry_shared.runtime import configure_logging


def main() -> None:
    settings = AdhocSettings()
    configure_logging(settings, "adhoc")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
