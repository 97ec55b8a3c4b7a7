"""The NetworkPolicy that guards a cluster's member pods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.models.networking_v1 import (
    NetworkPolicyIngressRule,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    NetworkPolicySpec,
)
from lightkube.resources.networking_v1 import NetworkPolicy

from etcd_operator.api import EtcdCluster
from etcd_operator.naming import CLIENT_PORT, METRICS_PORT, PEER_PORT, network_policy_name
from etcd_operator.resources.backup_job import backup_pod_selector
from etcd_operator.resources.labels import MEMBER, cluster_labels, member_selector, owner_reference

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class OperatorPod:
    """Where the operator runs, when it runs in a pod: its namespace and pod labels."""

    namespace: str
    labels: tuple[tuple[str, str], ...]

    def peer(self) -> NetworkPolicyPeer:
        return NetworkPolicyPeer(
            namespaceSelector=LabelSelector(matchLabels={NAMESPACE_NAME_LABEL: self.namespace}),
            podSelector=LabelSelector(matchLabels=dict(self.labels)),
        )


def parse_labels(text: str) -> tuple[tuple[str, str], ...] | None:
    """`k=v,k2=v2` (as in a Deployment's env) as sorted pairs; None if malformed or empty."""
    pairs = []
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key.strip():
            return None
        pairs.append((key.strip(), value.strip()))
    return tuple(sorted(pairs)) or None


def _port(number: int) -> list[NetworkPolicyPort]:
    return [NetworkPolicyPort(port=number, protocol="TCP")]


def _same_namespace() -> list[NetworkPolicyPeer]:
    return [NetworkPolicyPeer(podSelector=LabelSelector())]


_PEER_FIELDS = frozenset({"ipBlock", "namespaceSelector", "podSelector"})


def _peers(given: list[dict[str, Any]] | None, field: str) -> list[NetworkPolicyPeer]:
    if given is None:
        return _same_namespace()
    peers = []
    for i, peer in enumerate(given):
        # A misspelt field silently dropped could widen the rule (a namespaceSelector
        # without its podSelector admits the whole namespace): refuse it.
        unknown = sorted(set(peer) - _PEER_FIELDS)
        if unknown or not peer:
            what = f"unknown field(s) {', '.join(unknown)}" if unknown else "an empty peer"
            raise ValueError(
                f"spec.networkPolicy.{field}[{i}]: {what}; a peer has ipBlock, "
                "namespaceSelector and/or podSelector"
            )
        peers.append(cast(NetworkPolicyPeer, NetworkPolicyPeer.from_dict(dict(peer))))
    return peers


def network_policy(cluster: EtcdCluster, operator: OperatorPod | None) -> NetworkPolicy:
    """Ingress to the member pods: the peer port from this cluster's members only, the
    client port from `clientsFrom` (unset: the namespace's pods), the cluster's backup Jobs
    and the operator, the
    metrics port from `metricsFrom` (unset: the namespace's pods).

    Raises ValueError for a peer with fields a NetworkPolicyPeer does not have.

    An empty `clientsFrom`/`metricsFrom` list admits nobody to that port (not everybody, as
    an empty `from` would in a NetworkPolicy): the rule is left out. The operator's rule is
    there only when it runs in a pod; from outside the cluster it connects as the node or an
    external address, which the user's own policies (or the CNI) govern.
    """
    spec = cluster.spec.network_policy
    members = NetworkPolicyPeer(podSelector=LabelSelector(matchLabels=member_selector(cluster)))
    rules = [NetworkPolicyIngressRule(from_=[members], ports=_port(PEER_PORT))]
    clients = _peers(spec.clients_from, "clientsFrom")
    if spec.clients_from is not None:
        # The cluster's own backup Jobs are clients whatever clientsFrom says (unset, the
        # namespace's pods include them already).
        clients.append(
            NetworkPolicyPeer(
                podSelector=LabelSelector(matchLabels=backup_pod_selector(cluster.name))
            )
        )
    if operator is not None:
        clients.append(operator.peer())
    if clients:
        rules.append(NetworkPolicyIngressRule(from_=clients, ports=_port(CLIENT_PORT)))
    metrics = _peers(spec.metrics_from, "metricsFrom")
    if metrics:
        rules.append(NetworkPolicyIngressRule(from_=metrics, ports=_port(METRICS_PORT)))
    return NetworkPolicy(
        metadata=ObjectMeta(
            name=network_policy_name(cluster.name),
            namespace=cluster.namespace,
            labels=cluster_labels(cluster, MEMBER),
            ownerReferences=[owner_reference(cluster)],
        ),
        spec=NetworkPolicySpec(
            podSelector=LabelSelector(matchLabels=member_selector(cluster)),
            policyTypes=["Ingress"],
            ingress=rules,
        ),
    )
