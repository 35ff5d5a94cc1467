"""The `## @param` comments of a chart's values.yaml: parse them, check they cover every value, render the table.

The comment format is Bitnami's readme-generator-for-helm (`## @section Title`, `## @param key Description`), so
that tool works on the chart too; this script needs only Python and PyYAML.

    python deploy/helm/params.py deploy/helm/seqferry           # check: every value documented, README current
    python deploy/helm/params.py deploy/helm/seqferry --write   # regenerate the README's values table
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"
_SECTION = re.compile(r"^\s*## @section (?P<title>.+?)\s*$")
_PARAM = re.compile(r"^\s*## @param (?P<key>[A-Za-z0-9_.]+) (?P<description>.+?)\s*$")


@dataclass(frozen=True)
class Param:
    key: str
    description: str
    section: str


def parse_params(values_text: str) -> list[Param]:
    section = ""
    params: list[Param] = []
    for line in values_text.splitlines():
        if match := _SECTION.match(line):
            section = match["title"]
        elif match := _PARAM.match(line):
            params.append(Param(match["key"], match["description"], section))
    return params


def lookup(values: dict[str, Any], key: str) -> Any:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def problems(values: dict[str, Any], params: list[Param]) -> list[str]:
    """Values without a `@param` (on themselves or an enclosing map), and `@param`s naming no value."""
    documented = [p.key for p in params]
    found: list[str] = []
    duplicates = sorted({key for key in documented if documented.count(key) > 1})
    found += [f"@param {key} appears more than once" for key in duplicates]
    for key in documented:
        try:
            lookup(values, key)
        except KeyError:
            found.append(f"@param {key} names no value in values.yaml")

    keys = set(documented)

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, value in node.items():
            path = f"{prefix}{name}"
            if path in keys:
                continue
            if isinstance(value, dict) and value:
                walk(value, f"{path}.")
            else:
                found.append(f"{path} has no @param comment")

    walk(values, "")
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(values: dict[str, Any], params: list[Param]) -> str:
    lines: list[str] = []
    section = None
    for param in params:
        if param.section != section:
            section = param.section
            lines += ["", f"### {section}", "", "| Name | Description | Value |", "| --- | --- | --- |"]
        value = json.dumps(lookup(values, param.key), separators=(", ", ": "))
        lines.append(f"| `{param.key}` | {_cell(param.description)} | `{_cell(value)}` |")
    return "\n".join(lines).strip() + "\n"


def readme_with_table(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chart", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite the README's values table")
    args = parser.parse_args(argv)
    values_text = (args.chart / "values.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(values_text)
    params = parse_params(values_text)
    issues = problems(values, params)
    readme_path = args.chart / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    expected = readme_with_table(readme, render_table(values, params))
    if args.write:
        readme_path.write_text(expected, encoding="utf-8")
    elif expected != readme:
        issues.append(f"{readme_path}: values table is out of date (run with --write)")
    for issue in issues:
        sys.stderr.write(f"{issue}\n")
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
