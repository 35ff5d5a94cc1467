"""Per-run summaries from the NAS, for backends that do not report them (DataSync reports only totals).

When an execution ends, the run folders its include patterns reach are scanned on the mounted NAS (read-only):
files and bytes per folder, and which completion markers are present. The notifier compares these with the
bucket before it announces a run, so a summary that counts files DataSync has not copied yet only delays the
announcement to a later execution; it can never make it early.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seqferry_executor.backends.local.plan import RunBook
from seqferry_executor.backends.local.scan import Scanner
from seqferry_shared.events.models import RunSummary
from seqferry_shared.patterns import Matcher
from seqferry_shared.sequencers import SequencerPath


def scan_run_summaries(
    nas_root: Path, sequencers: Sequence[SequencerPath], includes: Sequence[str]
) -> list[RunSummary]:
    """Summaries of every run folder under ``includes`` (blocking: call it in a worker thread)."""
    result = Scanner(nas_root).scan(Matcher.of(includes))
    book = RunBook(sequencers)
    for entry in result.files:
        book.add_scanned(entry, pending=False)
    for failure in result.failures:
        book.add_failure(failure)
    return book.summaries()
