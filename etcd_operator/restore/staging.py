"""Putting a restored data directory in place, at most once per volume.

`etcdutl snapshot restore` writes into a staging directory on the member's own volume (it
refuses a non-empty target, and a restore cut short leaves a partial one behind); this step
then renames it to the data directory, which is atomic on one filesystem. A data directory
that already holds a member (a restore committed earlier, or a member that has run) is never
replaced: the staging copy is discarded instead.
"""

from __future__ import annotations

import os
import shutil
from enum import IntEnum
from pathlib import Path

from etcd_operator.datadir import WalError, read_identity


class Commit(IntEnum):
    """Exit codes of `etcd-operator restore-commit`."""

    OK = 0  # restored now, or the data directory already held a member (nothing restored)
    INCOMPLETE = 44  # the staging directory holds no complete restore
    UNEXPECTED = 45  # the data directory holds something that is not a member's data


def holds_member(data_dir: Path) -> bool:
    """Whether etcd would start on `data_dir` as an existing member (its WAL or member dir)."""
    try:
        if read_identity(data_dir) is not None:
            return True
    except WalError:
        return True  # unreadable, but a member's: never overwritten
    return (data_dir / "member").exists()


def clear_staging(staging: Path) -> None:
    """Remove what an earlier, interrupted restore left (etcdutl wants no target)."""
    shutil.rmtree(staging, ignore_errors=True)


def commit(staging: Path, data_dir: Path) -> tuple[Commit, str]:
    if holds_member(data_dir):
        clear_staging(staging)
        return Commit.OK, (
            f"{data_dir} already holds a member's data; the snapshot is not restored again"
        )
    try:
        if read_identity(staging) is None or not (staging / "member" / "snap" / "db").exists():
            return Commit.INCOMPLETE, f"{staging} holds no restored write-ahead log"
    except WalError as e:
        return Commit.INCOMPLETE, f"{staging} holds no complete restore: {e}"
    if data_dir.exists():
        if any(data_dir.iterdir()):
            return Commit.UNEXPECTED, f"{data_dir} is not empty but holds no member; left alone"
        data_dir.rmdir()
    staging.rename(data_dir)
    fd = os.open(data_dir.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return Commit.OK, f"restored the snapshot into {data_dir}"
