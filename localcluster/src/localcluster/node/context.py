"""What a pod worker and its containers need of their node, instead of the whole agent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.config import StateDir
from localcluster.node.kube import Kube
from localcluster.node.netpol import NetworkPolicies
from localcluster.paths import NodePaths


@dataclass
class NodeContext:
    state: StateDir
    name: str
    paths: NodePaths
    kube: Kube
    # Enforces NetworkPolicies in the pods' network namespaces.
    policies: NetworkPolicies
    # The bin directory of an etcd version's binaries, if the node has them.
    etcd_lookup: Callable[[str], Path | None]
    # Called by a pod's worker once it is done with the pod (by uid).
    forget: Callable[[str], None]
    backoff_base: float = 10.0
    backoff_cap: float = 300.0
    # The `kubernetes` Service's env vars, filled in once the node is registered.
    service_env: dict[str, str] = field(default_factory=dict)
