"""The cluster-wide objects of one EtcdCluster (peer and client Services, the disruption
budget): list what exists, server-side apply only what is missing or differs.

An idle cluster in sync costs two list requests per round here and no write. A failed apply
does not stop the round: the planner still runs, and the error becomes a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Service
from lightkube.resources.policy_v1 import PodDisruptionBudget

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.resources import client_service, peer_service, pod_disruption_budget
from etcd_operator.resources.applied import needs_apply, stamped
from etcd_operator.resources.labels import INSTANCE_LABEL, NAME_LABEL, cluster_labels

rbac.needs(Service, "list", why="each round: apply the services only when missing or changed")
rbac.needs(Service, "create", "patch", why="peer and client services, server-side applied")
rbac.needs(
    PodDisruptionBudget, "list", why="each round: apply the PDB only when missing or changed"
)
rbac.needs(PodDisruptionBudget, "create", "patch", why="the disruption budget, server-side applied")


def desired_objects(cluster: EtcdCluster, voters: int) -> list[Service | PodDisruptionBudget]:
    """The objects as the operator applies them (stamped with their hash)."""
    objects: list[Service | PodDisruptionBudget] = [peer_service(cluster), client_service(cluster)]
    if cluster.spec.pod_disruption_budget.enabled:
        objects.append(pod_disruption_budget(cluster, voting_members=voters))
    return [stamped(o) for o in objects]


async def sync_cluster_objects(kube: AsyncClient, cluster: EtcdCluster, voters: int) -> str | None:
    """Apply what is missing or differs (the PDB keeping a quorum of `voters`); the failures
    as one message, or None."""
    any_component = cluster_labels(cluster, "")
    selector: LabelSelector = {k: any_component[k] for k in (NAME_LABEL, INSTANCE_LABEL)}
    ns = cluster.namespace
    errors: list[str] = []
    live: dict[tuple[str, str], Mapping[str, Any]] = {}
    for kind in (Service, PodDisruptionBudget):
        try:
            async for obj in kube.list(kind, namespace=ns, labels=selector):
                body: dict[str, Any] = obj.to_dict()  # type: ignore[attr-defined]
                live[(kind.__name__, body["metadata"]["name"])] = body
        except ApiError as e:
            errors.append(f"listing {kind.__name__}s: {e}")
    for obj in desired_objects(cluster, voters):
        desired = obj.to_dict()
        name = desired["metadata"]["name"]
        if not needs_apply(desired, live.get((type(obj).__name__, name))):
            continue
        try:
            await kube.apply(obj, force=True)
        except ApiError as e:
            errors.append(f"{type(obj).__name__} {name}: {e}")
    return "; ".join(errors) or None
