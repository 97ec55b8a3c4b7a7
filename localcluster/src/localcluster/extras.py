"""Extra processes: what runs against a localcluster without being part of it.

A tool that starts a long-lived process talking to the cluster (e.g. an operator, started
by a test harness or a demo) registers it here, so that any later process can find it
and ``python -m localcluster down`` stops it before the nodes and the control plane (so
that it never reacts to its pods dying). localcluster knows nothing else about it.

A registration is the file ``state.extras/<name>.pid``: the pid on the first line (so
``kill $(head -1 FILE)`` works), then one JSON line holding the process's start time (a
recycled pid is never taken for it) and whatever the owner keeps with it (``meta``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.config import StateDir


@dataclass(frozen=True)
class Registration:
    """A registered process that still runs."""

    name: str
    pid: int
    meta: Mapping[str, Any] = field(default_factory=dict)


def pid_file(state: StateDir, name: str) -> Path:
    return state.extras / f"{name}.pid"


def register(state: StateDir, name: str, pid: int, meta: Mapping[str, Any]) -> None:
    """Record `pid` under `name` (replacing an earlier registration of that name)."""
    started = _start_time(pid)
    if started is None:
        raise ProcessLookupError(f"pid {pid} does not run: nothing to register")
    path = pid_file(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"meta": dict(meta), "start": started})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid}\n{body}\n")
    tmp.replace(path)


def lookup(state: StateDir, name: str) -> Registration | None:
    """The process registered under `name`, if it still runs."""
    path = pid_file(state, name)
    try:
        lines = path.read_text().splitlines()
        pid = int(lines[0])
        body = json.loads(lines[1])
        meta, started = body["meta"], int(body["start"])
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None
    if not isinstance(meta, dict) or _start_time(pid) != started:
        return None
    return Registration(name=name, pid=pid, meta=meta)


def registered(state: StateDir) -> list[Registration]:
    """Every registered process that still runs, by name."""
    if not state.extras.is_dir():
        return []
    found = (lookup(state, p.name.removesuffix(".pid")) for p in sorted(state.extras.glob("*.pid")))
    return [r for r in found if r is not None]


def unregister(state: StateDir, name: str, pid: int) -> None:
    """Remove the registration if it still names `pid` (a later start may have replaced it)."""
    path = pid_file(state, name)
    with contextlib.suppress(OSError, ValueError, IndexError):
        if int(path.read_text().splitlines()[0]) == pid:
            path.unlink()


def terminate(
    state: StateDir, registration: Registration, sig: int = signal.SIGTERM, timeout: float = 20.0
) -> None:
    """Signal the process (its whole group, if it leads one), wait until it is gone, SIGKILL
    after `timeout`; then drop its registration. It need not be our child."""
    pid, started = registration.pid, _start_time(registration.pid)

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)

    if started is not None:
        send(sig)
    deadline = time.monotonic() + timeout
    killed = sig == signal.SIGKILL
    while started is not None and _start_time(pid) == started:
        if time.monotonic() > deadline:
            if killed:
                raise TimeoutError(f"{registration.name} (pid {pid}) survived SIGKILL")
            send(signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5.0
        time.sleep(0.1)
    unregister(state, registration.name, pid)


def stop_all(state: StateDir, timeout: float = 20.0) -> None:
    """Stop every registered process (`localcluster down` does this first)."""
    for registration in registered(state):
        terminate(state, registration, signal.SIGTERM, timeout)


def _start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if it does not run (a zombie
    does not: it only waits for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] == "Z":
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3
