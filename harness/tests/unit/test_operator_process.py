"""OperatorProcess registrations: detached operators are found, reused and stopped
from any process; attached ones belong to the process that started them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from harness import identity, operator_process
from harness.operator_process import OperatorProcess, running_operators
from localcluster import extras
from localcluster.config import StateDir


@pytest.fixture
def fake_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in `etcd-operator` that just sleeps, at the path OperatorProcess runs."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    entry = prefix / "bin" / "etcd-operator"
    entry.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(600)\n")
    entry.chmod(0o755)
    monkeypatch.setattr(operator_process.sys, "prefix", str(prefix))
    monkeypatch.setattr(identity, "operator_identity", _fake_identity)
    yield entry


TOKEN_LEFT = {"seconds": 24 * 3600.0}


def _fake_identity(state: StateDir, name: str, namespaces: Sequence[str]) -> identity.Identity:
    """No API server here: an identity whose token expires TOKEN_LEFT from now."""
    account = identity.account_for(name, namespaces)
    return identity.Identity(
        account, state.root / f"{name}.kubeconfig", time.time() + TOKEN_LEFT["seconds"]
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDir]:
    state = StateDir(tmp_path / "state")
    yield state
    extras.stop_all(state, timeout=5)


def test_detached_operator_is_reused_and_stopped_from_a_fresh_object(
    state: StateDir, fake_entry: Path
) -> None:
    first = OperatorProcess(state, "demo-operator", namespaces=("default",), detach=True)
    first.start()
    assert first.last_start == "started"
    pid = first.pid
    assert pid is not None
    lines = (state.extras / "demo-operator.pid").read_text().splitlines()
    assert lines[0] == str(pid)

    again = OperatorProcess(state, "demo-operator", namespaces=("default",), detach=True)
    assert again.alive
    again.start()
    assert (again.last_start, again.pid) == ("reused", pid)

    [record] = running_operators(state)
    assert (record.name, record.namespaces, record.detached) == (
        "demo-operator",
        ("default",),
        True,
    )
    assert record.watches("default") and not record.watches("other")

    OperatorProcess(state, "demo-operator").stop(timeout=5)
    assert not again.alive
    assert not (state.extras / "demo-operator.pid").exists()
    first.stop()  # already gone: no error


def test_detached_operator_restarts_when_its_namespaces_differ(
    state: StateDir, fake_entry: Path
) -> None:
    first = OperatorProcess(state, "demo-operator", namespaces=("a",), detach=True)
    first.start()
    first_pid = first.pid
    second = OperatorProcess(state, "demo-operator", namespaces=("b",), detach=True)
    second.start()
    assert second.last_start == "restarted"
    assert second.pid != first_pid
    assert [r.namespaces for r in running_operators(state)] == [("b",)]


def test_attached_operator_is_listed_but_not_adopted(state: StateDir, fake_entry: Path) -> None:
    owned = OperatorProcess(state)
    owned.start()
    [record] = running_operators(state)
    assert (record.name, record.namespaces, record.detached) == ("operator", (), False)
    assert record.watches("anything")
    stranger = OperatorProcess(state)
    assert not stranger.alive
    stranger.stop()  # must not stop another process's operator
    assert owned.alive
    owned.stop(timeout=5)
    assert running_operators(state) == []


def test_localcluster_down_stops_operators_but_not_the_cluster_or_dead_records(
    state: StateDir, fake_entry: Path
) -> None:
    state.pids.mkdir(parents=True)
    state.extras.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (state.pids / "agent-x.pid").write_text(f"{sleeper.pid}\n")
        dead = '{"meta": {"kind": "etcd-operator"}, "start": 1}'
        (state.extras / "gone.pid").write_text(f"999999999\n{dead}\n")
        OperatorProcess(state, "demo-operator", detach=True).start()
        extras.stop_all(state, timeout=5)  # what `localcluster down` does first
        assert running_operators(state) == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_detached_operator_restarts_before_its_token_runs_out(
    state: StateDir, fake_entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TOKEN_LEFT, "seconds", 30 * 60.0)  # under TOKEN_MARGIN
    first = OperatorProcess(state, "demo-operator", namespaces=("a",), detach=True)
    first.start()
    first_pid = first.pid
    second = OperatorProcess(state, "demo-operator", namespaces=("a",), detach=True)
    second.start()
    assert second.last_start == "restarted" and second.pid != first_pid
    monkeypatch.setitem(TOKEN_LEFT, "seconds", 24 * 3600.0)
    third = OperatorProcess(state, "demo-operator", namespaces=("a",), detach=True)
    third.start()
    assert third.last_start == "restarted"  # the second one's token was still short
    fourth = OperatorProcess(state, "demo-operator", namespaces=("a",), detach=True)
    fourth.start()
    assert (fourth.last_start, fourth.pid) == ("reused", third.pid)
