"""A small XML writer that reproduces each instrument's layout (indent, line endings, empty-tag spelling).

ElementTree cannot choose between ``<Tag />`` and ``<Tag/>`` or CRLF line endings; instruments differ in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr


@dataclass(slots=True)
class El:
    tag: str
    text: str | None = None
    attrs: list[tuple[str, str]] = field(default_factory=list)
    children: list[El] = field(default_factory=list)

    def add(self, *children: El) -> El:
        self.children.extend(children)
        return self


def el(tag: str, text: object = None, /, *children: El, **attrs: object) -> El:
    """``el("Read", Number=1, NumCycles=151)``; attribute order is kept as given."""
    return El(
        tag=tag,
        text=None if text is None else str(text),
        attrs=[(k, str(v)) for k, v in attrs.items()],
        children=list(children),
    )


def el_attrs(tag: str, attrs: list[tuple[str, object]], *children: El) -> El:
    """For attribute names that are not Python identifiers (``xmlns:xsi``)."""
    return El(tag=tag, attrs=[(k, str(v)) for k, v in attrs], children=list(children))


@dataclass(frozen=True, slots=True)
class XmlStyle:
    declaration: str = '<?xml version="1.0"?>'
    indent: str = "  "
    newline: str = "\n"
    empty: str = " />"
    final_newline: bool = False


XSI_XSD = [
    ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
    ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
]
XSI_FIRST = [XSI_XSD[1], XSI_XSD[0]]


def render(root: El, style: XmlStyle) -> bytes:
    lines = [style.declaration]
    _render(root, 0, style, lines)
    text = style.newline.join(lines)
    if style.final_newline:
        text += style.newline
    return text.encode("utf-8")


def _render(node: El, depth: int, style: XmlStyle, lines: list[str]) -> None:
    pad = style.indent * depth
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in node.attrs)
    if node.children:
        lines.append(f"{pad}<{node.tag}{attrs}>")
        for child in node.children:
            _render(child, depth + 1, style, lines)
        lines.append(f"{pad}</{node.tag}>")
    elif node.text:
        lines.append(f"{pad}<{node.tag}{attrs}>{escape(node.text)}</{node.tag}>")
    else:
        lines.append(f"{pad}<{node.tag}{attrs}{style.empty}")
