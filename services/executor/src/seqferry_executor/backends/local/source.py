"""Open exactly the file the scan checked, and hand the native client a path that can only reach that file.

A file is opened relative to a descriptor of the NAS root without following a symbolic link at any component:
``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`` (Linux 5.6+), or a walk of ``O_NOFOLLOW``
opens component by component where the kernel lacks it or a seccomp profile refuses it. The first open is an
``O_PATH`` one, which reads nothing and has no side effect even on a FIFO or a device; its ``fstat`` must be a
regular file with the identity (device, inode, size, mtime, ctime) the scan saw. Only then is it opened for
reading, through ``/proc/self/fd/<n>``.

The native client reads ``/proc/self/fd/<n>`` of that read descriptor: a magic link, which opens the very inode the
descriptor holds however often it is opened (multipart uploads open it once per part) and whatever has since been
renamed, replaced or linked at the file's path or at any folder above it. The descriptor stays open until the
upload ended; after it, ``fstat`` of the same descriptor says whether the content changed while it was read.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from dataclasses import dataclass

from seqferry_executor.backends.local.scan import FileEntry, describe_os_error

REPLACED_BY_LINK = "replaced by a symbolic link since the scan, not read"
REMOVED = "file removed between scan and read"
NOT_REGULAR = "no longer a regular file, not read"

# openat2(2): <linux/openat2.h>
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every architecture (the unified syscall table)
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EXDEV, errno.ENOTDIR})
PROC_FD = "/proc/self/fd"


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class SourceError(Exception):
    """The file cannot be read as scanned. ``changed`` means it is still there but is not what the scan saw (a later
    pass ships it once it is stable); otherwise ``reason`` is a per-file problem to report."""

    def __init__(self, reason: str, *, changed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.changed = changed


@dataclass(slots=True)
class OpenSource:
    """A file opened for reading; ``path`` is what the native client opens (a magic link to ``fd``)."""

    fd: int
    entry: FileEntry

    @property
    def path(self) -> str:
        return f"{PROC_FD}/{self.fd}"

    def unchanged(self) -> bool:
        """True if the open file still has the size and timestamps it was scanned with."""
        return self.entry.same_as(os.fstat(self.fd))

    def close(self) -> None:
        os.close(self.fd)


class SourceRoot:
    """The NAS root as a directory descriptor; opens scanned files beneath it. Not thread-safe to close."""

    def __init__(self, root: str) -> None:
        self._fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._openat2 = _openat2_available()

    def close(self) -> None:
        os.close(self._fd)

    def open(self, entry: FileEntry) -> OpenSource:
        """Open ``entry`` for reading, or raise SourceError saying why not."""
        try:
            handle = self._open_path(entry.source)
        except FileNotFoundError as exc:
            raise SourceError(REMOVED) from exc
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS:
                raise SourceError(REPLACED_BY_LINK) from exc
            raise SourceError(f"file unreadable: {describe_os_error(exc)}") from exc
        try:
            st = os.fstat(handle)
            if stat.S_ISLNK(st.st_mode):
                raise SourceError(REPLACED_BY_LINK)
            if not stat.S_ISREG(st.st_mode):
                raise SourceError(NOT_REGULAR)
            if st.st_dev != entry.dev or not entry.same_as(st):
                raise SourceError("changed since the scan", changed=True)
            try:
                fd = os.open(f"{PROC_FD}/{handle}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise SourceError(f"file unreadable: {describe_os_error(exc)}") from exc
        finally:
            os.close(handle)
        return OpenSource(fd, entry)

    def _open_path(self, relative: str) -> int:
        """An ``O_PATH`` descriptor of ``relative`` (below the root), no symbolic link followed anywhere."""
        flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
        if self._openat2 and _LIBC is not None:
            how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
            fd = _LIBC.syscall(_SYS_OPENAT2, self._fd, os.fsencode(relative), ctypes.byref(how), ctypes.sizeof(how))
            if fd >= 0:
                return int(fd)
            code = ctypes.get_errno()
            if code not in (errno.ENOSYS, errno.EPERM, errno.E2BIG):
                raise OSError(code, os.strerror(code), relative)
            self._openat2 = False  # a kernel or a seccomp profile without openat2: walk instead, from now on
        return self._walk(relative, flags)

    def _walk(self, relative: str, flags: int) -> int:
        parts = relative.split("/")
        current = self._fd
        try:
            for part in parts[:-1]:
                if part in ("", ".", ".."):
                    raise OSError(errno.EXDEV, "path leaves the NAS root", relative)
                following = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
                if current != self._fd:
                    os.close(current)
                current = following
            if parts[-1] in ("", ".", ".."):
                raise OSError(errno.EXDEV, "path leaves the NAS root", relative)
            return os.open(parts[-1], flags, dir_fd=current)
        finally:
            if current != self._fd:
                os.close(current)


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to call into: walk
        return None


_LIBC = _load_libc()


def _openat2_available() -> bool:
    return _LIBC is not None and platform.system() == "Linux" and hasattr(_LIBC, "syscall")


def check_platform() -> None:
    """The engine reads files through ``/proc/self/fd``; refuse to start where there is no such thing."""
    if not os.path.isdir(PROC_FD) or not hasattr(os, "O_PATH"):
        raise OSError(errno.ENOTSUP, "the local backend needs Linux with /proc mounted (it uploads from /proc/self/fd)")
