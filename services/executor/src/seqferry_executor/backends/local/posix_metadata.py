"""POSIX file metadata on S3 objects, in the user-metadata keys AWS DataSync writes, so either backend recognises
the other's objects and a lab can switch backends (or run both) without uploading anything again.

DataSync, copying from NFS to S3, stores "file and folder modification timestamps, access timestamps (best
effort), user ID and group ID, POSIX permissions" as S3 user metadata "interoperable with NFS shares on file
gateways using AWS Storage Gateway [and] with FSx for Lustre" (DataSync user guide, "Understanding how DataSync
handles file and object metadata"). Those services document the keys and formats (FSx for Lustre user guide,
"POSIX metadata support for data repositories"):

- ``x-amz-meta-file-mtime`` / ``x-amz-meta-file-atime``: nanoseconds since the epoch, suffixed ``ns`` (a value
  without the suffix is read as milliseconds);
- ``x-amz-meta-file-owner`` / ``x-amz-meta-file-group``: UID and GID as integers;
- ``x-amz-meta-file-permissions``: file type and mode in octal, as ``st_mode`` (``0100644``);
- ``x-amz-meta-user-agent``: who wrote the object (ignored on import).

In TransferMode ``CHANGED`` DataSync copies a file again when its data or this metadata differs; the local engine
writes every one of these fields from the same ``stat`` it uses to decide what changed. Objects written by earlier
versions of seqferry carry ``x-amz-meta-mtime-ns`` instead; they are still recognised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from seqferry_executor.backends.local.scan import FileEntry

FILE_MTIME = "file-mtime"
FILE_ATIME = "file-atime"
FILE_OWNER = "file-owner"
FILE_GROUP = "file-group"
FILE_PERMISSIONS = "file-permissions"
USER_AGENT = "user-agent"
LEGACY_MTIME = "mtime-ns"
WRITER = "seqferry"

_TIME = re.compile(r"^(\d{1,20})(ns)?$")


def metadata_for(entry: FileEntry) -> dict[str, str]:
    """The user metadata (without the ``x-amz-meta-`` prefix) of the object holding ``entry``."""
    return {
        FILE_MTIME: f"{entry.mtime_ns}ns",
        FILE_ATIME: f"{entry.atime_ns}ns",
        FILE_OWNER: str(entry.uid),
        FILE_GROUP: str(entry.gid),
        FILE_PERMISSIONS: f"0{entry.mode:o}",
        USER_AGENT: WRITER,
    }


def parse_time_ns(value: str | None) -> int | None:
    """``1732547000123456789ns`` -> nanoseconds; a bare number is milliseconds; anything else None."""
    if value is None:
        return None
    match = _TIME.match(value.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if match.group(2) else number * 1_000_000


def mtime_ns_of(metadata: Mapping[str, str]) -> int | None:
    """The source file's modification time an object records, whoever wrote it (DataSync keys first)."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    found = parse_time_ns(lowered.get(FILE_MTIME))
    if found is not None:
        return found
    legacy = lowered.get(LEGACY_MTIME)
    return int(legacy) if legacy is not None and legacy.isdigit() else None
