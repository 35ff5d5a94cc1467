"""RunCompletionStatus.xml: how the instrument says a run ended (RTA 2 and later write it).

Two shapes are in use. RTA 2 (NextSeq 500/550, MiniSeq, iSeq) writes ``CompletionStatus`` with per-read
``Planned*Cycles``/``Completed*Cycles`` (the reference NextSeq 500 run 160404_NS500318_0141_AHW37NBGXX); later
instruments write ``CompletionStatus`` (or ``RunStatus``) with ``NumCyclesPlanned``/``NumCyclesCompleted``. Values:
``CompletedAsPlanned``, ``UserEndedEarly`` (an operator stopped the run), ``ExceptionEndedEarly`` (the instrument
aborted it); ``RunStatus`` says ``RunCompleted`` for a run that ended as planned.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqferry_notifier.domain.runinfo import read_run_file

COMPLETED_AS_PLANNED = "CompletedAsPlanned"
_COMPLETED = frozenset({COMPLETED_AS_PLANNED, "RunCompleted"})
MAX_STATUS_BYTES = 256 * 1024
_PLANNED = ("PlannedRead1Cycles", "PlannedRead2Cycles", "PlannedIndex1ReadCycles", "PlannedIndex2ReadCycles")
_DONE = ("CompletedRead1Cycles", "CompletedRead2Cycles", "CompletedIndex1ReadCycles", "CompletedIndex2ReadCycles")


class RunStatusError(ValueError):
    """RunCompletionStatus.xml cannot be read."""


@dataclass(frozen=True, slots=True)
class RunCompletion:
    status: str
    cycles_planned: int | None
    cycles_completed: int | None
    error: str

    @property
    def completed(self) -> bool:
        return self.status in _COMPLETED


def _number(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def parse_run_completion(data: bytes) -> RunCompletion:
    root = read_run_file(data, "RunCompletionStatus.xml", MAX_STATUS_BYTES, RunStatusError)
    fields = {child.tag: (child.text or "").strip() for child in root}
    status = fields.get("CompletionStatus") or fields.get("RunStatus")
    if not status:
        raise RunStatusError("RunCompletionStatus.xml has neither CompletionStatus nor RunStatus")
    planned = _number(fields.get("NumCyclesPlanned"))
    completed = _number(fields.get("NumCyclesCompleted"))
    if planned is None:
        planned = _sum([_number(fields.get(name)) for name in _PLANNED])
        completed = _sum([_number(fields.get(name)) for name in _DONE])
    error = fields.get("ErrorDescription", "")
    return RunCompletion(
        status=status,
        cycles_planned=planned,
        cycles_completed=completed,
        error="" if error in ("None", "") else error,
    )
