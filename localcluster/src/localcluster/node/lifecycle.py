"""Starting and stopping the node agents (and the cluster DNS writer) as detached processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from localcluster import locks, network
from localcluster.config import StateDir
from localcluster.node import container, ipam
from localcluster.paths import NodePaths, all_nodes, dns_writer_lock

REGISTER_TIMEOUT = 60.0
STOP_GRACE = 5.0


def node_name(index: int) -> str:
    return f"lc-node-{index}"


def _spawn(state: StateDir, name: str, argv: list[str]) -> None:
    state.logs.mkdir(parents=True, exist_ok=True)
    state.pids.mkdir(parents=True, exist_ok=True)
    with (state.logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=str(state.root),
            start_new_session=True,  # outlives the caller and its terminal
        )
    (state.pids / f"{name}.pid").write_text(str(proc.pid))


def start_agents(state: StateDir, binaries: Any, nodes: int = 1) -> None:
    """Start one agent per node plus the DNS writer; return once every Node is registered.

    Idempotent: agents already running with the same settings are kept (with their pods).
    ``LOCALCLUSTER_BACKOFF_CAP`` (seconds) shortens the crash-loop back-off for tests.
    """
    versions = dict(getattr(binaries, "etcd_versions", None) or {})
    etcd = {v: str(Path(b.etcd).parent) for v, b in sorted(versions.items())}
    flags = [arg for v, d in etcd.items() for arg in ("--etcd", f"{v}={d}")]
    cap = os.environ.get("LOCALCLUSTER_BACKOFF_CAP")
    if cap:
        flags += ["--backoff-cap", cap, "--backoff-base", str(min(10.0, float(cap)))]
    base = [sys.executable, "-m", "localcluster.node", "--state", str(state.root)]
    plan = {
        "agents": {
            node_name(i): [*base, "--name", node_name(i), "--kubelet-port", str(10250 + i), *flags]
            for i in range(nodes)
        },
        "dns": [sys.executable, "-m", "localcluster.dns", "--state", str(state.root)],
        "etcd": etcd,
    }
    with _exclusive(state):
        if _running(state, plan):
            return
        _stop(state)
        state.nodes.mkdir(parents=True, exist_ok=True)
        plan_file(state).write_text(json.dumps(plan, indent=1))
        _launch(state, plan)


def _exclusive(state: StateDir) -> contextlib.AbstractContextManager[None]:
    """Starts and stops of one cluster's agents never overlap."""
    return locks.exclusive(state.root / "agents.lock")


def _running(state: StateDir, plan: dict[str, Any]) -> bool:
    """Whether exactly this plan is already running."""
    try:
        if json.loads(plan_file(state).read_text()) != plan:
            return False
    except (OSError, ValueError):
        return False
    names = [f"agent-{n}" for n in plan["agents"]] + ["dns"]
    pids = [_read_pid(state.pids / f"{name}.pid") for name in names]
    registered = all(NodePaths(state, n).registered.exists() for n in plan["agents"])
    return registered and all(p is not None and _alive(p) for p in pids)


def plan_file(state: StateDir) -> Path:
    """How the agents were last started: argv per agent, the DNS writer, etcd bin dirs."""
    return state.nodes / "agents.json"


def restart_agents(state: StateDir) -> None:
    """Start the agents again exactly as last started (after stop_agents, or a crash)."""
    with _exclusive(state):
        _stop(state)
        _launch(state, json.loads(plan_file(state).read_text()))


def _launch(state: StateDir, plan: dict[str, Any]) -> None:
    names = sorted(plan["agents"])
    for name in names:
        NodePaths(state, name).registered.unlink(missing_ok=True)
        _spawn(state, f"agent-{name}", plan["agents"][name])
    _spawn(state, "dns", plan["dns"])
    deadline = time.monotonic() + REGISTER_TIMEOUT
    for name in names:
        while not NodePaths(state, name).registered.exists():
            pid = _read_pid(state.pids / f"agent-{name}.pid")
            if pid is None or not _alive(pid):
                raise RuntimeError(f"node agent {name} exited; see {state.logs}/agent-{name}.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node agent {name} did not register within {REGISTER_TIMEOUT}s")
            time.sleep(0.2)


def stop_agents(state: StateDir) -> None:
    """Stop agents, the DNS writer and every pod process; remove pod netns (idempotent).

    Only this state's pods are touched (found through their records); network.teardown
    sweeps every prefixed netns anyway."""
    if not state.root.is_dir():
        return
    with _exclusive(state):
        _stop(state)


def _stop(state: StateDir) -> None:
    pid_files = sorted(state.pids.glob("agent-*.pid")) if state.pids.is_dir() else []
    pid_files.append(state.pids / "dns.pid")
    pids = {p for p in map(_read_pid, pid_files) if p is not None}
    # Lock holders too: they are the agents even if a pid file was lost or overwritten.
    holders = [locks.holder(n.agent_lock) for n in all_nodes(state)]
    holders.append(locks.holder(dns_writer_lock(state)))
    pids |= {p for p in holders if p is not None}
    _terminate(sorted(p for p in pids if _ours(p, state)))
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)
    groups = []
    for node in all_nodes(state):
        for record in node.records():
            for pid_file in (node.pod_dir(record.uid) / "pids").glob("*"):
                pid = _read_pid(pid_file)
                if pid is not None:
                    container.kill_group(pid, signal.SIGTERM)
                    groups.append(pid)
    _wait_gone(groups, STOP_GRACE)
    for pid in groups:
        container.kill_group(pid, signal.SIGKILL)
    for node in all_nodes(state):
        for record in node.records():
            network.delete_pod_netns(record.netns, record.veth)
            ipam.release(state, record.uid)
            shutil.rmtree(node.pod_dir(record.uid), ignore_errors=True)


def _ours(pid: int, state: StateDir) -> bool:
    """Guards against recycled pids: the process is an agent or writer of this state."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(state.root).encode() in cmdline and any(b"localcluster." in a for a in cmdline)


def _terminate(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _wait_gone(pids, STOP_GRACE)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
