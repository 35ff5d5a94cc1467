"""The adhoc service's error family: what is retried, what is dead-lettered, what the API reports."""

from __future__ import annotations

from seqferry_shared.errors import RejectError, RetryLaterError


class AdhocError(Exception):
    """Base of the adhoc service's errors."""


class ManifestReadError(AdhocError, RetryLaterError):
    """The manifest could not be read now (network, throttling, permissions): the notification is retried and,
    after the queue's maxReceiveCount, dead-lettered."""


class ManifestGoneError(AdhocError, RejectError):
    """The announced object version no longer exists; no retry can read it."""


class ManifestSupersededError(AdhocError):
    """Unversioned bucket: the object was overwritten before it was read; the newer content has its own
    notification, and the overwritten content can no longer be read by anyone."""


class ForeignBucketError(AdhocError, RejectError):
    """A notification names a bucket other than the configured one; it is never read."""


class RequestNotPublishedError(AdhocError):
    """The Transfer Requested events could not be put on the bus (the record, if written, says ``failed``)."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id
