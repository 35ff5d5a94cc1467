"""The shared runtime's one error family: :class:`SeqferryError` and the outcomes a queue consumer acts on.

A handler (or anything it calls) says what should become of the message by the class of what it raises:

- :class:`RetryLaterError` — not now: the message returns to its queue after a back-off (the consumer's retry
  delay, doubled with each receive) and is tried again, until the queue's ``maxReceiveCount`` redrives it to the DLQ;
- :class:`RejectError` — never: the message is made visible again at once, so the redrive moves it to the DLQ
  after ``maxReceiveCount`` receives; the log names the reason;
- :class:`IgnoreError` — nothing to do: the message is deleted and the reason logged.

Any other exception is a failure the code did not foresee; the consumer retries it like :class:`RetryLaterError`
and logs its traceback. Errors of the shared package that mean one of these outcomes derive from it (an envelope
that cannot be parsed is rejected, a claim held elsewhere or a bus that refused events is retried later); the
others derive from :class:`SeqferryError` directly.
"""

from __future__ import annotations


class SeqferryError(Exception):
    """Base of every error the shared runtime raises."""


class RetryLaterError(SeqferryError):
    """Transient: the message comes back after a back-off and is tried again."""


class RejectError(SeqferryError):
    """The message can never be processed: it is left for the queue's dead-letter redrive."""


class IgnoreError(SeqferryError):
    """The message asks for nothing: it is deleted."""
