"""Checking a snapshot file while it is copied: its recorded sha256 and etcd's own hash trailer.

A snapshot streamed by etcd's Maintenance.Snapshot is the bbolt database (whole pages, a
multiple of 512 bytes) followed by the sha256 of that database (32 bytes); `etcdutl snapshot
restore` refuses a file whose trailer is missing or does not match. Checking the same while
copying refuses a truncated or altered file before any data directory is touched, in one pass
and with flat memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
TRAILER = 32  # sha256 of the database, appended by etcd
PAGE_ALIGNMENT = 512


class SnapshotInvalid(Exception):
    """The snapshot fails a check; `reason` is CamelCase for conditions and Events."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Checked:
    size: int
    sha256: str  # hex, over the whole file (trailer included)


class Checker:
    """The checks of `copy_checked`, fed chunk by chunk (for any stream of the snapshot)."""

    def __init__(self) -> None:
        # One pass of sha256: the body's, fed all but the last 32 bytes seen so far; the whole
        # file's is the body's continued with those 32 bytes.
        self._body = hashlib.sha256()
        self._tail = b""
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(chunk) >= TRAILER:
            view = memoryview(chunk)
            self._body.update(self._tail)
            self._body.update(view[:-TRAILER])
            self._tail = bytes(view[-TRAILER:])
            return
        joined = self._tail + chunk
        self._body.update(joined[:-TRAILER])
        self._tail = joined[-TRAILER:]

    def finish(self, expected_sha256: str | None) -> Checked:
        whole = self._body.copy()
        whole.update(self._tail)
        digest = whole.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise SnapshotInvalid(
                "SHA256Mismatch",
                f"the snapshot's sha256 is {digest}, not the recorded {expected_sha256}",
            )
        if self.size == 0:
            raise SnapshotInvalid("SnapshotEmpty", "the snapshot file is empty")
        if self.size % PAGE_ALIGNMENT != TRAILER:
            raise SnapshotInvalid(
                "SnapshotTruncated",
                f"the snapshot ({self.size} bytes) does not end with etcd's sha256 trailer: it"
                " is truncated, or not a snapshot taken through etcd's Maintenance API",
            )
        if self._body.digest() != self._tail:
            raise SnapshotInvalid(
                "SnapshotCorrupt",
                "the snapshot's content does not match etcd's sha256 trailer: it was altered",
            )
        return Checked(size=self.size, sha256=digest)


def copy_checked(src: BinaryIO, dst: BinaryIO, expected_sha256: str | None) -> Checked:
    """Copy `src` to `dst`, then check the whole-file sha256 against `expected_sha256` (when
    given) and etcd's trailer. Raises SnapshotInvalid; `dst` then holds an unchecked copy."""
    checker = Checker()
    while chunk := src.read(CHUNK):
        dst.write(chunk)
        checker.update(chunk)
    return checker.finish(expected_sha256)


def fetch_file(source: Path, target: Path, expected_sha256: str | None) -> Checked:
    """Copy the snapshot at `source` to `target` once it passed the checks. The copy is written
    beside `target` and renamed into place, so `target` exists only when complete and valid."""
    partial = target.with_name(target.name + ".partial")
    try:
        src = source.open("rb")
    except FileNotFoundError:
        raise SnapshotInvalid("SnapshotNotFound", f"no snapshot at {source}") from None
    except OSError as e:
        raise SnapshotInvalid("SnapshotUnreadable", f"cannot read {source}: {e}") from None
    with src, partial.open("wb") as dst:
        try:
            checked = copy_checked(src, dst, expected_sha256)
        except SnapshotInvalid:
            dst.close()
            partial.unlink(missing_ok=True)
            raise
        dst.flush()
        os.fsync(dst.fileno())
    partial.rename(target)
    return checked
