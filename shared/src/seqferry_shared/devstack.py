"""Helpers for the embedded dev stack (``make dev``): the emulator, bootstrap, waiting for it, where to look."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

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


def _parents() -> dict[int, int]:
    """pid → parent pid of every live process, from /proc (empty where there is none)."""
    found: dict[int, int] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after its closing parenthesis
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[0] != "Z":
            found[int(entry.name)] = int(fields[1])
    return found


def _other_stack_processes() -> list[int]:
    """The stack's other processes: honcho runs each in a wrapper process of its own, so they are the other
    children of our grandparent (honcho)."""
    parents = _parents()
    wrapper = os.getppid()
    manager = parents.get(wrapper)
    return [pid for pid, ppid in parents.items() if ppid == manager and pid != wrapper]


def run_emulator(host: str = "127.0.0.1", port: int = 4566, drain_s: float = 0.0) -> None:
    """Serve the emulator (moto's server) until SIGINT/SIGTERM; then outlive the services, for at most ``drain_s``.

    At Ctrl-C every process gets the signal at once. Services drain against the emulator — they finish in-flight
    messages or return them to their queues — so under honcho (the Procfile passes ``--drain-s``) the emulator
    stays until the stack's other processes have exited, within honcho's 5 s before it kills what is left. (``python -m
    moto.server`` itself exits at the first signal: it installs its own handlers, so a shell ``trap`` cannot keep
    it, and the services then retried against a closed port until they were killed.)
    """
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - a development dependency, needed only here
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415 - comes with moto

    from seqferry_shared.emulator import prepare  # noqa: PLC0415 - imports moto, a development dependency

    prepare()
    os.environ.setdefault("MOTO_PORT", str(port))
    # Block the signals before the server thread starts, so they are left for sigwait in this thread.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    thread.start()
    print(f"emulator (moto {version('moto')}) on http://{host}:{port}", flush=True)  # noqa: T201 - dev console
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline and _other_stack_processes():
        time.sleep(0.1)
    server.shutdown()
    sys.stdout.flush()
    # The emulator's state is in memory and goes with the process; tearing down thousands of objects one by one
    # at interpreter exit takes seconds, which honcho would end with SIGKILL.
    os._exit(0)


def main() -> None:
    app = typer.Typer(add_completion=False, help="seqferry embedded dev stack helpers")
    app.command("bootstrap")(bootstrap_and_wait)
    app.command("emulator")(run_emulator)
    app.command("wait", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(wait_then_exec)
    app()


if __name__ == "__main__":
    main()
