"""Print the third-party requirements of workspace members, one per line, for a cached dependency layer.

The image builder installs these (with the repository's constraints) before copying any source, so editing code
does not reinstall dependencies. Requirements naming another workspace member (``seqferry-*``) are left out: those
are installed from source afterwards.

Usage: ``python pyproject_deps.py shared/pyproject.toml services/executor/pyproject.toml``
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

WORKSPACE_PREFIX = "seqferry-"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyprojects: Iterable[Path]) -> list[str]:
    """Third-party requirement strings of every given pyproject.toml, de-duplicated, in first-seen order."""
    seen: set[str] = set()
    result: list[str] = []
    for path in pyprojects:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
        for requirement in project.get("dependencies", []):
            match = _NAME.match(requirement)
            if match is None:
                raise ValueError(f"{path}: cannot read a package name from {requirement!r}")
            name = _canonical(match.group(1))
            if name.startswith(WORKSPACE_PREFIX) or requirement in seen:
                continue
            seen.add(requirement)
            result.append(requirement)
    return result


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: pyproject_deps.py PYPROJECT [PYPROJECT ...]\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in requirements(Path(arg) for arg in argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
