"""Bring a whole localcluster up or down: binaries, network, control plane, nodes.

The network (``localcluster.network``) and node agents (``localcluster.node``)
are optional at import time, so the control plane can be used on its own.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Node

from localcluster import controlplane, extras
from localcluster.build import Binaries, ensure_binaries
from localcluster.config import StateDir


@dataclass(frozen=True)
class LocalCluster:
    state: StateDir
    binaries: Binaries

    @property
    def kubeconfig(self) -> Path:
        return self.state.kubeconfig


@dataclass
class Status:
    processes: dict[str, bool]
    api_ready: bool
    nodes: dict[str, bool] = field(default_factory=dict)  # name -> Ready

    @property
    def healthy(self) -> bool:
        return all(self.processes.values()) and self.api_ready


def _warn(message: str) -> None:
    print(f"[localcluster] warning: {message}", file=sys.stderr, flush=True)


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """A function of a module another part of localcluster provides, if present."""
    try:
        func: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        _warn(f"{module}.{name} is not available ({err}); skipping it")
        return None
    return func


def up(
    state: StateDir | None = None,
    nodes: int = 1,
    progress: bool = True,
    binaries: Binaries | None = None,
) -> LocalCluster:
    """Build what is missing and start everything; reuses what already runs."""
    state = state or StateDir.default()
    binaries = binaries or ensure_binaries(progress=progress)
    start = time.monotonic()
    for path in (state.root, state.logs, state.pids, state.volumes, state.nodes):
        path.mkdir(parents=True, exist_ok=True)
    if setup := _optional("localcluster.network", "setup"):
        setup(state)
    controlplane.start(state, binaries)
    if progress:
        print(
            f"[localcluster] control plane ready in {time.monotonic() - start:.1f}s",
            file=sys.stderr,
        )
    agents_needed = nodes > 0 and not _agents_up(state, nodes)
    if agents_needed and (start_agents := _optional("localcluster.node", "start_agents")):
        start_agents(state, binaries, nodes=nodes)
    if progress:
        print(f"[localcluster] up in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return LocalCluster(state=state, binaries=binaries)


def _agents_up(state: StateDir, nodes: int) -> bool:
    """Whether `nodes` agents run and their Nodes are Ready: then `up` leaves them
    alone, since restarting agents would kill every pod."""
    alive = 0
    for pid_file in state.pids.glob("agent-*.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), 0)
            alive += 1
    return alive >= nodes and sum(status(state).nodes.values()) >= nodes


def down(state: StateDir | None = None) -> None:
    """Stop nodes, control plane and network; idempotent and safe when half up."""
    state = state or StateDir.default()
    errors: list[str] = []
    steps: list[tuple[str, Callable[..., Any] | None]] = [
        # Extra processes first (e.g. the demo's operator), so none reacts to its pods dying.
        ("extra processes", extras.stop_all),
        ("node agents", _optional("localcluster.node", "stop_agents")),
        ("control plane", controlplane.stop),
        ("network", _optional("localcluster.network", "teardown")),
    ]
    for what, step in steps:
        if step is None:
            continue
        try:
            step(state)
        except Exception as err:  # keep going: later steps must still run
            errors.append(f"{what}: {err}")
    if errors:
        raise RuntimeError("localcluster down finished with errors: " + "; ".join(errors))


def status(state: StateDir | None = None) -> Status:
    state = state or StateDir.default()
    processes = {
        c: controlplane.component_pid(state, c) is not None for c in controlplane.COMPONENTS
    }
    result = Status(processes=processes, api_ready=controlplane.api_ready(state))
    if result.api_ready:
        client = Client(KubeConfig.from_file(state.kubeconfig))
        try:
            for node in client.list(Node):
                conditions = (node.status.conditions if node.status else None) or []
                ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
                result.nodes[(node.metadata and node.metadata.name) or "?"] = ready
        finally:
            client.close()
    return result
