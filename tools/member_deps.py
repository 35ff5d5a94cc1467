"""Every workspace member declares what it imports: ``make deps`` (run by ``make test``) fails otherwise.

For each member directory, deptry (configured in the member's ``pyproject.toml``, ``[tool.deptry]``) checks
  - its code (``src/``): every imported package is one of its ``dependencies`` (not merely installed, not only
    there because another package pulls it in), no package of its ``test`` extra is imported, no dependency is
    declared without being used;
  - its tests (``tests/``): every imported package is a dependency or in the ``test`` extra.

Usage: ``python tools/member_deps.py shared services/executor ...``; exits 1, naming file, line and package, on
the first member with a problem after reporting every member.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEPTRY = Path(sys.executable).with_name("deptry")


def check(member: Path) -> list[str]:
    """The failed checks of one member, each with deptry's report ([] when it declares what it imports)."""
    passes = [["src"]]
    if (member / "tests").is_dir():
        # deptry leaves tests out by default; here they are the subject. Unused and test-only packages are the
        # code pass's business.
        passes.append(["tests", "--exclude", r"(^|/)\.venv", "--ignore", "DEP002,DEP004"])
    failures = []
    for args in passes:
        result = subprocess.run(  # noqa: S603 - deptry from this interpreter's environment, fixed arguments
            [str(DEPTRY), *args, "--no-ansi"], cwd=member, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            failures.append(f"{member}/{args[0]}:\n{result.stdout}{result.stderr}")
    return failures


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: member_deps.py MEMBER_DIR [MEMBER_DIR ...]\n")
        return 2
    failures = [failure for member in argv for failure in check(Path(member))]
    for failure in failures:
        sys.stderr.write(failure + "\n")
    if not failures:
        sys.stdout.write(f"{len(argv)} members declare what they import\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
