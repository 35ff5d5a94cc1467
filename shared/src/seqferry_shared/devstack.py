"""Helpers for the embedded dev stack (``make dev``): wait for the emulator, bootstrap, say where to look."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import urllib.request

import typer
from botocore.exceptions import BotoCoreError, ClientError

from seqferry_shared.aws import sync_client
from seqferry_shared.bootstrap import bootstrap
from seqferry_shared.settings import ServiceSettings

DEFAULT_PORTS = {"notifier": 8080, "scheduler": 8081, "executor": 8082, "adhoc": 8083, "simulator": 8084}


def ports() -> dict[str, int]:
    """Service ports, as the Procfile sets them (overridable with SEQFERRY_<SERVICE>_PORT)."""
    return {
        name: int(os.environ.get(f"SEQFERRY_{name.upper()}_PORT", default)) for name, default in DEFAULT_PORTS.items()
    }


def _wait_for_endpoint(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - local emulator URL from settings
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"emulator at {url} did not answer within {timeout_s} s: {exc}") from exc
            time.sleep(0.2)


def bootstrap_and_wait(timeout_s: float = 60.0) -> None:
    """Wait for the emulator, create every resource, print where to look, then idle until stopped."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = ServiceSettings()
    endpoint = settings.aws_endpoint_url or ""
    if endpoint:
        _wait_for_endpoint(endpoint, timeout_s)
    result = bootstrap(settings)
    lines = [
        "",
        "seqferry dev stack is up:",
        *(f"  {name:<22} http://127.0.0.1:{port}/  (probes: /healthz /readyz)" for name, port in ports().items()),
        f"  emulator (moto)        {endpoint}",
        f"  bucket                 s3://{result['bucket']}/   e.g. aws --endpoint-url {endpoint} s3 ls "
        f"s3://{result['bucket']}/ --recursive",
        f"  NAS (simulator writes) {os.environ.get('SEQFERRY_NAS_ROOT', 'var/nas')}",
        "  Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - this command's output is for the person running make dev
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def wait_then_exec(ctx: typer.Context, timeout_s: float = 120.0) -> None:
    """Wait until bootstrap has created the bus, then replace this process with the given command."""
    settings = ServiceSettings()
    events = sync_client("events", settings)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            events.describe_event_bus(Name=settings.names.bus)
            sync_client("dynamodb", settings).describe_table(TableName=settings.names.table)
            break
        except (ClientError, BotoCoreError):
            if time.monotonic() > deadline:
                raise SystemExit("resources not bootstrapped in time") from None
            time.sleep(0.5)
    argv = list(ctx.args)
    if not argv:
        raise SystemExit("usage: python -m seqferry_shared.devstack wait -- COMMAND [ARGS...]")
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - the dev Procfile's own command line


def main() -> None:
    app = typer.Typer(add_completion=False, help="seqferry embedded dev stack helpers")
    app.command("bootstrap")(bootstrap_and_wait)
    app.command("wait", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(wait_then_exec)
    app()


if __name__ == "__main__":
    main()
