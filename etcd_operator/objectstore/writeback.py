"""Disk writes that keep pace with a long sequential file write, so its fsync is short.

Left alone, the kernel holds a snapshot's pages dirty until the final fsync, which then
writes everything at once after the stream ended, and the pages stay cached, counted
against the backup pod's memory. Instead, once
a window of the file is written its writeback starts (`sync_file_range`, Linux), and the
window before it is waited for and dropped from the page cache. This only moves disk
writes earlier: durability still comes from the final fsync alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Callable

WINDOW = 8 * 1024 * 1024

# sync_file_range(2) flags.
_WAIT_BEFORE = 1
_WRITE = 2
_WAIT_AFTER = 4
# The file system does not take the call: not a write error, the final fsync does it all.
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ESPIPE})


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range  # libc, already loaded
        fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
        fn.restype = ctypes.c_int
        return fn
    return None


_sync_file_range = _libc_sync_file_range()


def _call(fd: int, offset: int, length: int, flags: int) -> None:
    assert _sync_file_range is not None
    if _sync_file_range(fd, offset, length, flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


class Writeback:
    """Follows one file's writes (`wrote`, from the one thread that writes it)."""

    def __init__(self, fd: int, window: int = WINDOW) -> None:
        self.fd = fd
        self.window = window
        self.written = 0
        self.started = 0  # bytes whose writeback was started, in whole windows
        self.enabled = _sync_file_range is not None  # not Linux: the final fsync does it all

    def wrote(self, size: int) -> None:
        self.written += size
        try:
            while self.enabled and self.written - self.started >= self.window:
                _call(self.fd, self.started, self.window, _WRITE)
                if self.started >= self.window:
                    previous = self.started - self.window
                    _call(self.fd, previous, self.window, _WAIT_BEFORE | _WRITE | _WAIT_AFTER)
                    os.posix_fadvise(self.fd, previous, self.window, os.POSIX_FADV_DONTNEED)
                self.started += self.window
        except OSError as e:
            # Any other error is the disk's (EIO, ENOSPC) and fails the backup: once told
            # here, the kernel may not tell the final fsync again.
            if e.errno not in _UNSUPPORTED:
                raise
            self.enabled = False
