"""Faults on demand for tests, working from the state directory the agents keep.

Plain synchronous functions: a test calls them between API calls. Pod processes,
network namespaces and veths are found through the pod records under ``state.nodes``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from signal import SIGKILL

from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

from localcluster import network
from localcluster.config import StateDir
from localcluster.node import container as runtime
from localcluster.paths import NodePaths, find_pod


def container_pid(state: StateDir, namespace: str, pod: str, container: str) -> int:
    node, record = find_pod(state, namespace, pod)
    pid_file = node.pid_file(record.uid, container)
    try:
        return int(pid_file.read_text())
    except (OSError, ValueError) as e:
        raise LookupError(f"container {container} of {namespace}/{pod} is not running") from e


def kill_container(
    state: StateDir, namespace: str, pod: str, container: str, signal: int = SIGKILL
) -> int:
    """Signal the container's whole process group (as if it crashed); returns the pid."""
    pid = container_pid(state, namespace, pod, container)
    runtime.kill_group(pid, signal)
    return pid


def partition_pod(state: StateDir, namespace: str, pod: str) -> None:
    """Cut the pod off the network: its host-side veth goes down."""
    _, record = find_pod(state, namespace, pod)
    network.set_link(record.veth, up=False)


def heal_pod(state: StateDir, namespace: str, pod: str) -> None:
    _, record = find_pod(state, namespace, pod)
    network.set_link(record.veth, up=True)


def volume_path(state: StateDir, namespace: str, pvc: str) -> Path:
    """The host directory behind a bound PVC (PVC -> PV -> hostPath/local path)."""
    client = Client(KubeConfig.from_file(state.kubeconfig))
    claim = client.get(PersistentVolumeClaim, pvc, namespace=namespace)
    volume_name = claim.spec.volumeName if claim.spec else None
    if not volume_name:
        raise LookupError(f"persistentvolumeclaim {namespace}/{pvc} is not bound")
    spec = client.get(PersistentVolume, volume_name).spec
    source = spec and (spec.hostPath or spec.local)
    if not source:
        raise LookupError(f"persistentvolume {volume_name} has no host directory")
    return Path(source.path)


def wipe_volume(state: StateDir, namespace: str, pvc: str) -> Path:
    """Remove everything inside the PVC's directory (the directory itself stays)."""
    path = volume_path(state, namespace, pvc)
    for child in path.iterdir() if path.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return path


def stop_heartbeats(state: StateDir, node: str) -> None:
    """The node's agent stops renewing its Lease and posting status (pods keep running)."""
    paths = NodePaths(state, node)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.heartbeats_stopped.touch()


def resume_heartbeats(state: StateDir, node: str) -> None:
    NodePaths(state, node).heartbeats_stopped.unlink(missing_ok=True)
