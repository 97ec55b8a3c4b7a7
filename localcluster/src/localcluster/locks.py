"""Single instances through flock: one agent per node, one DNS writer, one lifecycle change.

The holder writes its pid into the lock file, so a stopper can find it even when the
pid files were lost or overwritten (e.g. by two overlapping `start_agents` calls).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def hold(path: Path, wait: float) -> IO[str] | None:
    """Take the lock for this process's lifetime (keep the returned file open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("a+")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                f.close()
                return None
            time.sleep(0.2)
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def holder(path: Path) -> int | None:
    """The pid holding the lock, or None when nobody holds it."""
    if not path.exists():
        return None
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            with contextlib.suppress(ValueError):
                return int(f.read().strip())
            return None
        fcntl.flock(f, fcntl.LOCK_UN)
        return None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Block until no other process is inside the same section."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
