"""The process node: agents that register Nodes and run their Pods as local processes.

One agent process per node (``python -m localcluster.node``) registers its Node, renews
its Lease (heartbeat.py) and watches the Pods bound to it (agent.py). Each pod gets a
worker (pod.py): a network namespace with a veth into the bridge and an address from
ipam.py, its volumes as host directories (volumes.py), init containers then containers
(containers.py), each a process group started inside the netns and a private mount
namespace where volumes are bind-mounted at their mountPaths (container.py), with probes
(probes.py), restarts with back-off, and graceful deletion. A container runs as its
securityContext says (security.py: user, groups, fsGroup-owned volumes, no_new_privs,
capabilities; runAsNonRoot with root is refused before start). Status goes to pods/status
(status.py), Events like a kubelet's (kube.py). Per-pod state for faults and restarts
lives under ``state.nodes/<node>`` (localcluster.paths). Cluster DNS and the ClusterIP proxy run
in one separate process (localcluster.dns, localcluster.proxy).

The orchestrator (localcluster.cluster) calls `start_agents` and `stop_agents`.
"""

from localcluster.node.lifecycle import restart_agents, start_agents, stop_agents

__all__ = ["restart_agents", "start_agents", "stop_agents"]
