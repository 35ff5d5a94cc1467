"""`seqferry simulate`: start a synthetic sequencing run on the simulator (development and demos)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from seqferry_cli.context import CliContext
from seqferry_cli.errors import InvalidInputError
from seqferry_cli.output import fields, human_bytes
from seqferry_shared.sequencers import Instrument


def simulate(
    ctx: typer.Context,
    *,
    instrument: Annotated[Instrument, typer.Argument(help="Instrument to simulate.", case_sensitive=False)],
    cycles: Annotated[
        str | None, typer.Option("--cycles", "-c", help="Cycles per read: '151', '151,151' or '151,10,10,151'.")
    ] = None,
    scale: Annotated[
        float | None, typer.Option("--scale", "-s", max=1, help="File-size factor, 0 < scale <= 1 (1 = real sizes).")
    ] = None,
    flowcell: Annotated[str | None, typer.Option("--flowcell", help="Flow-cell type, e.g. v2-nano or S1.")] = None,
    pace: Annotated[str | None, typer.Option("--pace", help="'realistic' or cycles per second.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Seed of the run's contents.")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="Bearer token of the simulator (default SEQFERRY_API_TOKEN).")
    ] = None,
) -> None:
    """Start a simulated run now: the simulator writes a realistic run folder onto the (dev) NAS.

    [bold]Examples[/bold]

      seqferry simulate miseq --cycles 26,8,26 --scale 0.0001

      seqferry simulate novaseq6000 -c 51,8,8,51 --flowcell S1 --pace 4
    """
    cli: CliContext = ctx.obj
    if scale is not None and scale <= 0:
        raise InvalidInputError(f"--scale {scale:g}: must be more than 0 (and at most 1)")
    body: dict[str, Any] = {"instrument": instrument.value}
    for name, value in (("cycles", cycles), ("scale", scale), ("flowcell", flowcell), ("pace", pace), ("seed", seed)):
        if value is not None:
            body[name] = value
    secret = token or cli.settings.api_token.get_secret_value()
    with cli.api("simulator", token=secret) as simulator:
        run = simulator.post("/runs", body)
    cli.out.result(
        run,
        lambda: [
            fields(
                [
                    ("run", run.get("run_id")),
                    ("instrument", run.get("instrument")),
                    ("NAS path", run.get("path")),
                    ("cycles", f"{run.get('cycles')} ({run.get('total_cycles')} in all)"),
                    ("state", run.get("state")),
                    ("so far", f"{run.get('files')} files, {human_bytes(run.get('bytes'))}"),
                ]
            )
        ],
    )
    cli.out.message(f"follow it with: seqferry run {run.get('run_id')}")
