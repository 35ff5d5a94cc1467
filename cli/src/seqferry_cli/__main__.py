"""Entry point of ``seqferry``: runs the command, turns every failure into a message and a documented exit code."""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType

import typer
from rich.console import Console
from rich.text import Text

from seqferry_cli.app import build_app
from seqferry_cli.errors import CliError, ExitCode, translate

INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug, not a verdict about a transfer


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so temporary rules and queues are removed on the way out.
    raise KeyboardInterrupt


def report(console: Console, error: CliError) -> None:
    # Not wrapped: paths and commands in messages stay whole for copy and paste.
    console.print(Text.assemble(("seqferry: error: ", "bold red"), error.message), highlight=False, soft_wrap=True)
    for line in error.details:
        console.print(Text(f"  {line}"), highlight=False, soft_wrap=True)
    if error.hint:
        console.print(Text.assemble(("hint: ", "bold"), error.hint), highlight=False, soft_wrap=True)


def run(argv: Sequence[str] | None = None, *, stderr: Console | None = None) -> int:
    """Run one command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    err = stderr or Console(stderr=True)
    try:
        command = typer.main.get_command(build_app())
        # Standalone mode: typer formats usage errors (exit 2), completion and --help exit by themselves.
        command.main(args=args, prog_name="seqferry", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == ExitCode.INTERRUPTED:
            err.print(Text("seqferry: interrupted", style="yellow"))
        return code
    except KeyboardInterrupt:
        err.print(Text("seqferry: interrupted", style="yellow"))
        return ExitCode.INTERRUPTED
    except CliError as exc:
        report(err, exc)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, never a traceback
        translated = translate(exc)
        if translated is not None:
            if "--debug" in args:
                err.print(traceback.format_exc(), markup=False, highlight=False)
            report(err, translated)
            return translated.exit_code
        if "--debug" in args:
            err.print(traceback.format_exc(), markup=False, highlight=False)
        report(
            err,
            CliError(
                f"internal error: {type(exc).__name__}: {exc}",
                hint="run again with --debug for the traceback, and report it",
            ),
        )
        return INTERNAL_ERROR
    return ExitCode.OK


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run())


if __name__ == "__main__":
    main()
