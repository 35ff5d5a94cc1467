"""``seqferry-notifier``: build settings, configure logging, serve the app."""

from __future__ import annotations

from seqferry_notifier.app import create_app
from seqferry_notifier.settings import NotifierSettings
from seqferry_shared.http import serve
from seqferry_shared.runtime import configure_logging


def main() -> None:
    settings = NotifierSettings()
    configure_logging(settings, "notifier")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
