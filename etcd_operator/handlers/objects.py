"""The cluster-wide objects of one EtcdCluster (peer and client Services, the disruption
budget, the NetworkPolicy): list what exists, server-side apply only what is missing or
differs, delete the NetworkPolicy once it is disabled.

An idle cluster in sync costs three list requests per round here and no write. A failed
apply does not stop the round: the planner still runs, and the error becomes a condition.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.naming import OPERATOR_POD_LABELS_ENV, POD_NAMESPACE_ENV, network_policy_name
from etcd_operator.resources import client_service, peer_service, pod_disruption_budget
from etcd_operator.resources.applied import needs_apply, stamped
from etcd_operator.resources.labels import INSTANCE_LABEL, NAME_LABEL, cluster_labels
from etcd_operator.resources.networkpolicy import OperatorPod, network_policy, parse_labels

Desired = Service | PodDisruptionBudget | NetworkPolicy

rbac.needs(Service, "list", why="each round: apply the services only when missing or changed")
rbac.needs(Service, "create", "patch", why="peer and client services, server-side applied")
rbac.needs(
    PodDisruptionBudget, "list", why="each round: apply the PDB only when missing or changed"
)
rbac.needs(PodDisruptionBudget, "create", "patch", why="the disruption budget, server-side applied")
rbac.needs(
    NetworkPolicy, "list", why="each round: apply the network policy only when missing or changed"
)
rbac.needs(NetworkPolicy, "create", "patch", why="the members' network policy, server-side applied")
rbac.needs(NetworkPolicy, "delete", why="spec.networkPolicy.enabled turned false")


def operator_pod() -> OperatorPod | None:
    """The operator's pod as its Deployment describes it; None outside a pod."""
    namespace = os.environ.get(POD_NAMESPACE_ENV)
    labels = parse_labels(os.environ.get(OPERATOR_POD_LABELS_ENV, ""))
    return OperatorPod(namespace, labels) if namespace and labels else None


def desired_objects(
    cluster: EtcdCluster, voters: int, operator: OperatorPod | None = None
) -> list[Desired]:
    """The objects as the operator applies them (stamped with their hash). Raises
    ValueError when spec.networkPolicy cannot be built."""
    objects: list[Desired] = [peer_service(cluster), client_service(cluster)]
    if cluster.spec.pod_disruption_budget.enabled:
        objects.append(pod_disruption_budget(cluster, voting_members=voters))
    if cluster.spec.network_policy.enabled:
        objects.append(network_policy(cluster, operator))
    return [stamped(o) for o in objects]


async def sync_cluster_objects(kube: AsyncClient, cluster: EtcdCluster, voters: int) -> str | None:
    """Apply what is missing or differs (the PDB keeping a quorum of `voters`); the failures
    as one message, or None."""
    any_component = cluster_labels(cluster, "")
    selector: LabelSelector = {k: any_component[k] for k in (NAME_LABEL, INSTANCE_LABEL)}
    ns = cluster.namespace
    errors: list[str] = []
    live: dict[tuple[str, str], Mapping[str, Any]] = {}
    for kind in (Service, PodDisruptionBudget, NetworkPolicy):
        try:
            async for obj in kube.list(kind, namespace=ns, labels=selector):
                body: dict[str, Any] = obj.to_dict()  # type: ignore[attr-defined]
                live[(kind.__name__, body["metadata"]["name"])] = body
        except ApiError as e:
            errors.append(f"listing {kind.__name__}s: {e}")
    try:
        objects = desired_objects(cluster, voters, operator_pod())
    except ValueError as e:  # the rest still applies; the policy in place stays
        errors.append(str(e))
        objects = desired_objects(_without_policy(cluster), voters)
    policy = ("NetworkPolicy", network_policy_name(cluster.name))
    if not cluster.spec.network_policy.enabled and policy in live:
        try:
            await kube.delete(NetworkPolicy, policy[1], namespace=ns)
        except ApiError as e:
            if e.status.code != 404:
                errors.append(f"deleting NetworkPolicy {policy[1]}: {e}")
    for obj in objects:
        desired = obj.to_dict()
        name = desired["metadata"]["name"]
        if not needs_apply(desired, live.get((type(obj).__name__, name))):
            continue
        try:
            await kube.apply(obj, force=True)
        except ApiError as e:
            errors.append(f"{type(obj).__name__} {name}: {e}")
    return "; ".join(errors) or None


def _without_policy(cluster: EtcdCluster) -> EtcdCluster:
    spec = cluster.spec.model_copy(
        update={"network_policy": cluster.spec.network_policy.model_copy(update={"enabled": False})}
    )
    return cluster.model_copy(update={"spec": spec})
