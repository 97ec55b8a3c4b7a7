"""The PodDisruptionBudget that keeps voluntary evictions from breaking quorum."""

from __future__ import annotations

from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.models.policy_v1 import PodDisruptionBudgetSpec
from lightkube.resources.policy_v1 import PodDisruptionBudget

from etcd_operator.api import EtcdCluster
from etcd_operator.naming import pdb_name
from etcd_operator.planner import quorum
from etcd_operator.resources.labels import MEMBER, cluster_labels, member_selector, owner_reference


def pod_disruption_budget(
    cluster: EtcdCluster, *, voting_members: int | None = None
) -> PodDisruptionBudget:
    """`minAvailable` = quorum of the voting members: evictions stop at quorum.

    Why `minAvailable` and not `maxUnavailable = replicas - quorum`:

    - It states the invariant itself. The disruption controller allows an eviction
      only while more than `minAvailable` selected pods are ready, and a member pod
      is ready only if it is a voting member connected to a quorum (readiness is
      etcd's `/readyz`, which fails for learners and for members without a
      leader). So however many members are already down, an eviction can never
      leave fewer than a quorum of healthy voters.
    - `maxUnavailable` (and percentages) need the pods' controller to expose a
      `scale` subresource for the expected pod count; our pods belong to an
      EtcdCluster, and an integer `minAvailable` is the form that works for pods
      without a scalable controller.

    The numbers: 1 member -> minAvailable 1 (no voluntary eviction: evicting the
    only member is an outage, so a node drain waits for a human); 2 -> 2 (losing
    either member loses quorum); 3 -> 2; 4 -> 3; 5 -> 3; ... 9 -> 5.

    `voting_members` is the number of voters the cluster has right now, when the
    caller knows it (during scale-in it is larger than `spec.replicas`, and the
    quorum of the larger cluster is what must hold); otherwise `spec.replicas`.

    `unhealthyPodEvictionPolicy: AlwaysAllow` lets a drain evict a member pod that
    is not ready anyway: that costs no quorum and keeps one broken pod from
    blocking node maintenance forever.
    """
    voters = cluster.spec.replicas if voting_members is None else voting_members
    return PodDisruptionBudget(
        metadata=ObjectMeta(
            name=pdb_name(cluster.name),
            namespace=cluster.namespace,
            labels=cluster_labels(cluster, MEMBER),
            ownerReferences=[owner_reference(cluster)],
        ),
        spec=PodDisruptionBudgetSpec(
            minAvailable=quorum(voters),
            selector=LabelSelector(matchLabels=member_selector(cluster)),
            unhealthyPodEvictionPolicy="AlwaysAllow",
        ),
    )
