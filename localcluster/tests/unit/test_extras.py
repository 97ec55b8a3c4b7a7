"""Extra processes registered against a localcluster: found while they run, never
confused with a recycled pid, stopped by `stop_all`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import extras
from localcluster.config import StateDir


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "state")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_registered_process_is_found_until_stopped(
    state: StateDir, sleeper: subprocess.Popen[bytes]
) -> None:
    extras.register(state, "tool", sleeper.pid, {"role": "test"})
    assert (state.extras / "tool.pid").read_text().splitlines()[0] == str(sleeper.pid)
    found = extras.lookup(state, "tool")
    assert found is not None and (found.pid, found.meta) == (sleeper.pid, {"role": "test"})
    assert extras.registered(state) == [found]

    extras.stop_all(state, timeout=5)
    assert sleeper.wait(5) is not None
    assert extras.registered(state) == []
    assert not (state.extras / "tool.pid").exists()


def test_a_recycled_or_dead_pid_is_not_the_registered_process(
    state: StateDir, sleeper: subprocess.Popen[bytes]
) -> None:
    extras.register(state, "tool", sleeper.pid, {})
    path = state.extras / "tool.pid"
    pid, body = path.read_text().splitlines()
    # Same pid, another start time: what a recycled pid looks like.
    recycled = body.replace('"start": ', '"start": 1')
    path.write_text(f"{pid}\n{recycled}\n")
    assert extras.lookup(state, "tool") is None
    (state.extras / "gone.pid").write_text('999999999\n{"meta": {}, "start": 1}\n')
    extras.stop_all(state, timeout=5)
    assert sleeper.poll() is None


def test_unregister_leaves_a_newer_registration_alone(
    state: StateDir, sleeper: subprocess.Popen[bytes]
) -> None:
    extras.register(state, "tool", sleeper.pid, {})
    extras.unregister(state, "tool", sleeper.pid + 1)
    assert extras.lookup(state, "tool") is not None
    extras.unregister(state, "tool", sleeper.pid)
    assert extras.lookup(state, "tool") is None
