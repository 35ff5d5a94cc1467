"""A checker and a small interpreter for the CloudWatch Logs Insights queries the dashboard runs.

No emulator runs Logs Insights queries, so the dashboard's log widgets are checked here: :func:`parse_query` refuses
what Logs Insights would refuse (unknown commands, unbalanced parentheses or quotes, a ``parse`` glob whose ``*``
count differs from its ``as`` names, fields used before they exist, bad regexes, a limit outside 1-10,000), and
:func:`run_query` evaluates the commands the widgets use (SOURCE, fields, parse, filter, stats count/sum/avg/min/
max by fields and ``bin()``, sort, limit) over log events, with Logs Insights' semantics for them
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

COMMANDS = {"fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup", "unmask", "pattern", "diff"}
AGGREGATES = {"count", "sum", "avg", "min", "max", "count_distinct", "pct", "stddev", "earliest", "latest"}
BUILTIN_FIELDS = {"@timestamp", "@message", "@logStream", "@log", "@ingestionTime", "@ptr"}
_BIN = re.compile(r"^bin\((\d+)([smhd])\)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class QuerySyntaxError(ValueError):
    pass


@dataclass
class Command:
    name: str
    text: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Query:
    sources: list[str]
    commands: list[Command]


def _split(query: str) -> list[str]:
    """Split on '|' outside quotes, regex literals and parentheses; refuse what is unbalanced."""
    parts, current, quote, depth = [], [], "", 0
    previous = ""
    for char in query:
        if quote:
            current.append(char)
            if char == quote and previous != "\\":
                quote = ""
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == "/" and re.search(r"(like|=~)\s*$", "".join(current)):
            quote = "/"
            current.append(char)
        elif char == "(":
            depth += 1
            current.append(char)
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise QuerySyntaxError(f"unbalanced ')' in {query!r}")
            current.append(char)
        elif char == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        previous = char
    if quote:
        raise QuerySyntaxError(f"unterminated {quote} in {query!r}")
    if depth:
        raise QuerySyntaxError(f"unbalanced '(' in {query!r}")
    parts.append("".join(current).strip())
    return parts


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _aliased(item: str) -> tuple[str, str]:
    match = re.fullmatch(r"(.+?)\s+as\s+([A-Za-z_][A-Za-z0-9_]*)", item.strip())
    return (match.group(1).strip(), match.group(2)) if match else (item.strip(), item.strip())


def _require(name: str, known: set[str], where: str) -> None:
    if name != "*" and name not in known:
        raise QuerySyntaxError(f"{where}: field {name!r} is not defined before it is used")


def parse_query(query: str) -> Query:
    sources: list[str] = []
    commands: list[Command] = []
    known = set(BUILTIN_FIELDS)
    for part in _split(query):
        if not part:
            raise QuerySyntaxError(f"empty command in {query!r}")
        source = re.fullmatch(r"SOURCE\s+'([^']+)'", part)
        if source:
            if commands:
                raise QuerySyntaxError("SOURCE must come before every command")
            sources.append(source.group(1))
            continue
        word, _, rest = part.partition(" ")
        name = word.lower()
        if name not in COMMANDS:
            raise QuerySyntaxError(f"unknown command {word!r}")
        command = Command(name, rest.strip())
        if name == "fields":
            items = [_aliased(item) for item in _names(rest)]
            for expr, _alias in items:
                _require(expr, known, "fields")
            known.update(alias for _, alias in items)
            command.args["items"] = items
        elif name == "parse":
            glob = re.fullmatch(r'(@?\w+)\s+"((?:[^"\\]|\\.)*)"\s+as\s+(.+)', rest.strip())
            if glob is None:
                raise QuerySyntaxError(f"parse needs '<field> \"<glob>\" as <names>': {part!r}")
            source_field, pattern, as_names = glob.group(1), glob.group(2).replace('\\"', '"'), _names(glob.group(3))
            _require(source_field, known, "parse")
            if pattern.count("*") != len(as_names):
                raise QuerySyntaxError(f"parse glob has {pattern.count('*')} '*' but {len(as_names)} names: {part!r}")
            known.update(as_names)
            command.args.update(field=source_field, pattern=pattern, names=as_names)
        elif name == "filter":
            like = re.fullmatch(r"(@?\w+)\s+like\s+(/(.*)/|\"(.*)\")", rest.strip())
            if like is None:
                raise QuerySyntaxError(
                    f"filter supported here: '<field> like /re/' or '<field> like \"text\"': {part!r}"
                )
            _require(like.group(1), known, "filter")
            if like.group(3) is not None:
                try:
                    regex = re.compile(like.group(3))
                except re.error as exc:
                    raise QuerySyntaxError(f"bad regex in {part!r}: {exc}") from exc
            else:
                regex = re.compile(re.escape(like.group(4)))
            command.args.update(field=like.group(1), regex=regex)
        elif name == "stats":
            aggregates_text, _, by_text = rest.partition(" by ")
            aggregates = []
            for item in _names(aggregates_text):
                expr, alias = _aliased(item)
                call = re.fullmatch(r"(\w+)\((.*)\)", expr)
                if call is None or call.group(1) not in AGGREGATES:
                    raise QuerySyntaxError(f"stats needs aggregate functions, got {expr!r}")
                argument = call.group(2).strip() or "*"
                _require(argument, known, "stats")
                aggregates.append((call.group(1), argument, alias))
            groups = []
            for item in _names(by_text):
                expr, alias = _aliased(item)
                bin_match = _BIN.match(expr)
                if bin_match is None:
                    _require(expr, known, "stats by")
                groups.append((expr, alias))
            # after stats only its outputs exist
            known = {alias for *_, alias in aggregates} | {alias for _, alias in groups}
            command.args.update(aggregates=aggregates, groups=groups)
        elif name == "sort":
            sort = re.fullmatch(r"(@?\w+)(\s+(asc|desc))?", rest.strip())
            if sort is None:
                raise QuerySyntaxError(f"sort needs '<field> [asc|desc]': {part!r}")
            _require(sort.group(1), known, "sort")
            command.args.update(field=sort.group(1), descending=(sort.group(3) or "desc") == "desc")
        elif name == "limit":
            if not rest.strip().isdigit() or not 1 <= int(rest) <= 10_000:
                raise QuerySyntaxError(f"limit must be 1 to 10000: {part!r}")
            command.args["n"] = int(rest)
        commands.append(command)
    if not commands:
        raise QuerySyntaxError("a query needs at least one command")
    return Query(sources, commands)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    pieces = [re.escape(piece) for piece in pattern.split("*")]
    return re.compile("(.*?)".join(pieces[:-1]) + "(.*?)" + pieces[-1] if len(pieces) > 1 else pieces[0])


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_query(query: str, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluate ``query`` over events (``@timestamp`` in ms, ``@message``, ``@logStream``, ``@log``)."""
    parsed = parse_query(query)
    rows = [dict(e) for e in events if not parsed.sources or e.get("@log") in parsed.sources]
    for command in parsed.commands:
        if command.name == "fields":
            for row in rows:
                for expr, alias in command.args["items"]:
                    row[alias] = row.get(expr)
        elif command.name == "parse":
            regex = _glob_regex(command.args["pattern"])
            for row in rows:
                match = regex.search(str(row.get(command.args["field"], "")))
                if match:
                    row.update(zip(command.args["names"], match.groups(), strict=True))
        elif command.name == "filter":
            regex = command.args["regex"]
            rows = [r for r in rows if regex.search(str(r.get(command.args["field"], "")))]
        elif command.name == "stats":
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                key = []
                for expr, _alias in command.args["groups"]:
                    bin_match = _BIN.match(expr)
                    if bin_match:
                        width = int(bin_match.group(1)) * _UNITS[bin_match.group(2)] * 1000
                        key.append(row["@timestamp"] // width * width)
                    else:
                        key.append(row.get(expr))
                groups[tuple(key)].append(row)
            result = []
            for key, members in groups.items():
                out = {alias: value for (_, alias), value in zip(command.args["groups"], key, strict=True)}
                for function, argument, alias in command.args["aggregates"]:
                    values = [m.get(argument) for m in members] if argument != "*" else members
                    numbers = [n for n in (_number(v) for v in values) if n is not None]
                    if function == "count":
                        out[alias] = len([v for v in values if v is not None])
                    elif function == "sum":
                        out[alias] = sum(numbers)
                    elif function == "avg":
                        out[alias] = sum(numbers) / len(numbers) if numbers else None
                    elif function in ("min", "max"):
                        out[alias] = (min if function == "min" else max)(numbers) if numbers else None
                    else:
                        raise QuerySyntaxError(f"{function} is not evaluated here")
                result.append(out)
            rows = result
        elif command.name == "sort":
            name = command.args["field"]
            rows.sort(key=lambda r: (r.get(name) is None, r.get(name)), reverse=command.args["descending"])
        elif command.name == "limit":
            rows = rows[: command.args["n"]]
    return rows
