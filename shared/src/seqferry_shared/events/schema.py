"""Export each event's JSON Schema and example to ``docs/events/`` (``seqferry-schemas [--check] [DIR]``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from seqferry_shared.events.examples import examples
from seqferry_shared.events.models import ALL_EVENTS, EventDetail


def slug(model: type[EventDetail]) -> str:
    return re.sub(r"[^a-z0-9]+", "-", model.DETAIL_TYPE.lower()).strip("-")


def schema_document(model: type[EventDetail]) -> dict[str, object]:
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"seqferry/events/{slug(model)}.schema.json",
        "x-detail-type": model.DETAIL_TYPE,
        "x-source": model.SOURCE,
        **schema,
    }


def rendered() -> dict[str, str]:
    """File name → exact file content, for every event."""
    files: dict[str, str] = {}
    samples = examples()
    for model in ALL_EVENTS:
        name = slug(model)
        files[f"{name}.schema.json"] = json.dumps(schema_document(model), indent=2, sort_keys=True) + "\n"
        example = {
            "detail-type": model.DETAIL_TYPE,
            "source": model.SOURCE,
            "detail": json.loads(samples[model].model_dump_json(exclude_none=True)),
        }
        files[f"{name}.example.json"] = json.dumps(example, indent=2) + "\n"
    return files


def main() -> None:
    def command(
        directory: Path = typer.Argument(Path("docs/events"), help="Where the schema files live."),  # noqa: B008
        check: bool = typer.Option(False, "--check", help="Fail if the files differ from the models."),
    ) -> None:
        """Write (or check) the JSON Schema and example of every seqferry event."""
        stale = []
        for name, content in rendered().items():
            path = directory / name
            if check:
                if not path.exists() or path.read_text() != content:
                    stale.append(name)
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        if stale:
            typer.echo(f"out of date: {', '.join(stale)}; run 'make schemas'", err=True)
            raise typer.Exit(1)

    typer.run(command)
