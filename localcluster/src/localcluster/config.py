"""Shared constants of one localcluster: paths, addresses, names.

Every module of localcluster takes its addresses and paths from here so that the
control plane, the node agent and the faults API agree without talking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLUSTER_DOMAIN = "cluster.local"
# Pods live on one Linux bridge; the host is the gateway. Private range inside
# network namespaces this project creates itself: nothing outside the machine.
BRIDGE_NAME = "lcbr0"
POD_CIDR = "10.213.0.0/16"
GATEWAY_IP = "10.213.0.1"
SERVICE_CIDR = "10.214.0.0/24"
NETNS_PREFIX = "lc-"
APISERVER_PORT = 6443
CONTROL_PLANE_ETCD_CLIENT_PORT = 23790
CONTROL_PLANE_ETCD_PEER_PORT = 23800


def cache_dir() -> Path:
    """Where built binaries are kept across clones (keyed by pins below it)."""
    base = os.environ.get("LOCALCLUSTER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "etcd-operator-localcluster",
    )
    return Path(base)


@dataclass(frozen=True)
class StateDir:
    """Runtime state of a running localcluster (certs, logs, pid files, volumes)."""

    root: Path

    @classmethod
    def default(cls) -> StateDir:
        return cls(
            Path(os.environ.get("LOCALCLUSTER_STATE_DIR") or Path.cwd() / ".localcluster").resolve()
        )

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def extras(self) -> Path:
        """Pid files of extra processes run against the cluster (localcluster.extras)."""
        return self.root / "extras"

    @property
    def volumes(self) -> Path:
        """Directories behind PVs and hostPath volumes; they survive pod deletion."""
        return self.root / "volumes"

    @property
    def nodes(self) -> Path:
        """Per-node agent state: pods, containers, pid files, control files."""
        return self.root / "nodes"
