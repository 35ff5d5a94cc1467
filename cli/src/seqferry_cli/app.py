"""The `seqferry` command tree: global options (as the AWS CLI has them) and one command per job."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from seqferry_cli.commands.doctor import doctor
from seqferry_cli.commands.manifest import manifest
from seqferry_cli.commands.runs import run, runs
from seqferry_cli.commands.simulate import simulate
from seqferry_cli.commands.status import status
from seqferry_cli.commands.transfers import request, wait
from seqferry_cli.context import CliContext
from seqferry_cli.output import Output
from seqferry_cli.settings import OutputMode, load_settings

HELP = """Request, follow and check seqferry transfers from a terminal or a pipeline.

Talks only to seqferry's public surface: the EventBridge bus, the bucket and the services' HTTP APIs.
"""

EPILOG = "\n\n".join(
    [
        "[bold]Try it[/bold] (with `make dev` running): seqferry status · seqferry simulate miseq · "
        "seqferry runs --watch · seqferry request /sequencers/incoming/miseq --wait",
        "[bold]Exit codes[/bold]: 0 success · 1 failed (a transfer ended in ERROR, a manifest line was rejected, "
        "doctor found an error, a service is not ready) · 2 usage or validation error (nothing was sent; also a "
        "request the executor rejected and a manifest without a valid line) · 3 AWS or a service unreachable or "
        "refusing (credentials, permissions) · 4 --timeout passed (the transfer goes on: seqferry wait ID) · "
        "130 interrupted (Ctrl-C, SIGTERM) · 70 internal error.",
        "[bold]Settings[/bold]: options, then the environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, "
        "SEQFERRY_PREFIX, SEQFERRY_BUCKET, SEQFERRY_SEQUENCER_PATHS, SEQFERRY_ADHOC_PATH, SEQFERRY_<SERVICE>_URL, "
        "SEQFERRY_API_TOKEN, SEQFERRY_OUTPUT), then ~/.config/seqferry/config.toml (\\[default] and "
        "\\[profiles.NAME]), then the `make dev` defaults.",
        "[bold]AWS permissions[/bold]: request: events:PutEvents on the bus · request --follow events: also "
        "events:PutRule, PutTargets, RemoveTargets, DeleteRule and sqs:CreateQueue, GetQueueAttributes, "
        "SetQueueAttributes, ReceiveMessage, DeleteMessage, DeleteQueue on <prefix>-cli-* · manifest: s3:PutObject "
        "on adhoc/* and s3:GetObject on adhoc/results/* · status: sqs:GetQueueUrl, sqs:GetQueueAttributes · "
        "doctor: read-only describe, get and list calls (the SecurityAudit policy covers them) · runs, run, wait "
        "and simulate use only the services' HTTP APIs.",
    ]
)


def _version(value: bool) -> None:
    if value:
        try:
            shown = version("seqferry-cli")
        except PackageNotFoundError:
            shown = "unknown"
        typer.echo(f"seqferry {shown}")
        raise typer.Exit


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="seqferry",
        help=HELP,
        epilog=EPILOG,
        rich_markup_mode="rich",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    )

    @app.callback()
    def global_options(
        ctx: typer.Context,
        *,
        profile: Annotated[
            str | None,
            typer.Option("--profile", help="AWS profile; also selects \\[profiles.NAME] in the config file."),
        ] = None,
        region: Annotated[str | None, typer.Option("--region", help="AWS region.")] = None,
        endpoint_url: Annotated[
            str | None,
            typer.Option("--endpoint-url", help="AWS endpoint, e.g. an emulator (default AWS_ENDPOINT_URL)."),
        ] = None,
        output: Annotated[
            OutputMode | None, typer.Option("--output", "-o", help="table (people) or json (scripts).")
        ] = None,
        prefix: Annotated[
            str | None, typer.Option("--prefix", help="Resource name prefix of the deployment (bus, queues, ...).")
        ] = None,
        bucket: Annotated[
            str | None, typer.Option("--bucket", help="Destination bucket (default <prefix>-runs).")
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option("--config", help="Config file (default ~/.config/seqferry/config.toml, SEQFERRY_CONFIG)."),
        ] = None,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
        show_version: Annotated[
            bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
        ] = False,
    ) -> None:
        settings = load_settings(
            {
                "aws_profile": profile,
                "aws_region": region,
                "aws_endpoint_url": endpoint_url,
                "output": output,
                "prefix": prefix,
                "bucket": bucket,
            },
            config_file=config,
        )
        ctx.obj = CliContext(settings, Output(settings.output, Console(), Console(stderr=True)))

    for command in (request, wait, manifest, runs, run, status, doctor, simulate):
        app.command(no_args_is_help=command in (request, wait, manifest, run, simulate))(command)
    return app
