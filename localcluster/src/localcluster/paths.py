"""Where one node keeps its per-pod state, so that faults and restarts can find it.

Layout under ``state.nodes/<node>/``::

    heartbeats-stopped           control file: while present, no Lease renewals
    image-scratch/               always empty (see NodePaths.image_scratch)
    pods/<uid>/pod.json          namespace, name, uid, netns, veth, ip
    pods/<uid>/pids/<container>  pid (also the process group) of the running container
    pods/<uid>/volumes/<volume>/ emptyDir, secret, configMap, ... contents

Container logs go to ``state.logs/pods/<namespace>_<pod>_<uid8>/<container>.log``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from localcluster.config import StateDir


@dataclass(frozen=True)
class PodRecord:
    namespace: str
    name: str
    uid: str
    node: str
    netns: str
    veth: str
    ip: str
    hostname: str = ""
    subdomain: str = ""


@dataclass(frozen=True)
class NodePaths:
    state: StateDir
    node: str

    @property
    def root(self) -> Path:
        return self.state.nodes / self.node

    @property
    def heartbeats_stopped(self) -> Path:
        return self.root / "heartbeats-stopped"

    @property
    def agent_lock(self) -> Path:
        """Held by the node's agent while it runs (holds its pid)."""
        return self.root / "agent.lock"

    @property
    def registered(self) -> Path:
        """Written once the Node is registered (start_agents waits for it)."""
        return self.root / "registered"

    @property
    def image_scratch(self) -> Path:
        """An empty directory where containers assemble their view of image files hidden
        by the host (each in its own mount namespace; the host never sees a mount here)."""
        return self.root / "image-scratch"

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def pid_file(self, uid: str, container: str) -> Path:
        return self.pod_dir(uid) / "pids" / container

    def termination_file(self, uid: str, container: str) -> Path:
        """The host file behind a container's terminationMessagePath."""
        return self.pod_dir(uid) / f"{container}.termination-log"

    def log_file(self, record: PodRecord, container: str, previous: bool = False) -> Path:
        """Container output (``previous``: of the instance before the last restart); kept
        under state.logs after the pod is gone, for debugging."""
        pod = f"{record.namespace}_{record.name}_{record.uid[:8]}"
        suffix = ".previous.log" if previous else ".log"
        return self.state.logs / "pods" / pod / f"{container}{suffix}"

    def volume_dir(self, uid: str, volume: str) -> Path:
        return self.pod_dir(uid) / "volumes" / volume

    def write_record(self, record: PodRecord) -> None:
        path = self.pod_dir(record.uid) / "pod.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)

    def records(self) -> Iterator[PodRecord]:
        for path in sorted((self.root / "pods").glob("*/pod.json")):
            try:
                yield PodRecord(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue


def dns_writer_lock(state: StateDir) -> Path:
    """Held by the cluster's single DNS writer (localcluster.dns) while it runs."""
    return state.root / "dns" / "writer.lock"


def all_nodes(state: StateDir) -> list[NodePaths]:
    if not state.nodes.is_dir():
        return []
    return [NodePaths(state, p.name) for p in sorted(state.nodes.iterdir()) if p.is_dir()]


def find_pod(state: StateDir, namespace: str, name: str) -> tuple[NodePaths, PodRecord]:
    """The node and record of the pod currently running under this name."""
    for node in all_nodes(state):
        for record in node.records():
            if record.namespace == namespace and record.name == name:
                return node, record
    raise LookupError(f"pod {namespace}/{name} is not running on any node")
