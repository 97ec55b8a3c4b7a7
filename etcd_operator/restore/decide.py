"""The EtcdRestore controller's decision: observed state -> the next step (pure).

The order is fixed: verify the snapshot in a pod, record what it holds in status, remove the
verification pod, create the EtcdCluster (annotated with the restore's UID), wait for it to be
ready, check that it serves at least the snapshot's revision. Every fact comes from the world or
from status written at the step that made it true, so a round that dies half way is resumed by
the next one; the cluster is created only when none of that name exists, and one that exists
without this restore's annotation is never touched. A cluster not ready `spec.readyTimeout`
after its creation fails the restore (and is left alone). A drill (`spec.drill`) checks its
throwaway cluster, records the result, then deletes it (drill.py).
"""

from __future__ import annotations

from etcd_operator.api.restore import RestorePhase
from etcd_operator.restore.drill import drill_check, drill_finish, not_ready, timed_out
from etcd_operator.restore.model import (
    ClusterSeen,
    CreateCluster,
    CreateVerifyPod,
    DeleteCluster,
    DeleteVerifyPod,
    Done,
    DrillExpected,
    DrillSeen,
    Fail,
    Reason,
    RecordDrill,
    RecordVerified,
    RestoreDecision,
    RestoreObserved,
    SnapshotFacts,
    Step,
    Succeed,
    VerifyPod,
    Wait,
    decision,
)

__all__ = [
    "ClusterSeen",
    "CreateCluster",
    "CreateVerifyPod",
    "DeleteCluster",
    "DeleteVerifyPod",
    "Done",
    "DrillExpected",
    "DrillSeen",
    "Fail",
    "Reason",
    "RecordDrill",
    "RecordVerified",
    "RestoreDecision",
    "RestoreObserved",
    "SnapshotFacts",
    "Step",
    "Succeed",
    "VerifyPod",
    "Wait",
    "decide_restore",
]


def decide_restore(o: RestoreObserved) -> RestoreDecision:
    if o.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED):
        return decision(Done(), o.phase, o.phase.value, "the restore has finished")
    if o.drill is not None and o.drill.recorded is not None:
        return drill_finish(o, o.drill.recorded)
    if o.cluster is not None:
        return _follow(o, o.cluster)
    if o.cluster_recorded:
        return decision(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.CLUSTER_DELETED,
            f"EtcdCluster {o.cluster_name} was created by this restore and then deleted",
        )
    if o.verified is not None:
        if o.pod is not None:
            return decision(
                DeleteVerifyPod(),
                RestorePhase.RESTORING,
                Reason.CLEANING_UP,
                "the snapshot is verified; removing the verification pod (it mounts the source)",
            )
        return decision(
            CreateCluster(),
            RestorePhase.RESTORING,
            Reason.CREATING_CLUSTER,
            f"creating EtcdCluster {o.cluster_name} from the snapshot (revision"
            f" {o.verified.revision})",
        )
    return _verify(o)


def _verify(o: RestoreObserved) -> RestoreDecision:
    pod = o.pod
    if pod is None and o.unresolved is not None:
        pending, reason, message = o.unresolved
        if pending:
            return decision(Wait(), RestorePhase.PENDING, reason, message)
        return decision(
            Fail(snapshot=True), RestorePhase.FAILED, reason, f"{message}; nothing was created"
        )
    if pod is None:
        if not o.source_exists:
            return decision(
                Fail(snapshot=True),
                RestorePhase.FAILED,
                Reason.SNAPSHOT_NOT_FOUND,
                f"the snapshot source ({o.source}) does not exist; nothing was created",
            )
        return decision(
            CreateVerifyPod(),
            RestorePhase.VERIFYING,
            Reason.VERIFYING,
            f"verifying the snapshot at {o.source}",
        )
    if pod.phase == "Succeeded":
        if pod.facts is None:
            return decision(
                Fail(snapshot=True),
                RestorePhase.FAILED,
                Reason.VERIFICATION_FAILED,
                "the verification pod succeeded but its report could not be read",
            )
        return decision(
            RecordVerified(pod.facts),
            RestorePhase.VERIFYING,
            Reason.VERIFIED,
            f"the snapshot is intact (revision {pod.facts.revision})",
        )
    if pod.phase == "Failed":
        reason, message = pod.failure or (Reason.VERIFICATION_FAILED, "the verification failed")
        return decision(
            Fail(snapshot=True),
            RestorePhase.FAILED,
            reason,
            f"the snapshot at {o.source} was refused: {message}; nothing was created",
        )
    return decision(Wait(), RestorePhase.VERIFYING, Reason.VERIFYING, f"verifying {o.source}")


def _follow(o: RestoreObserved, cluster: ClusterSeen) -> RestoreDecision:
    if cluster.restored_by != o.uid:
        return decision(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.CLUSTER_EXISTS,
            f"an EtcdCluster named {o.cluster_name} already exists and was not created by this"
            " restore; it is left alone and nothing was restored",
        )
    if o.pod is not None:
        return decision(
            DeleteVerifyPod(), RestorePhase.RESTORING, Reason.CLEANING_UP, "removing the pod"
        )
    if not cluster.ready or o.served_revision is None:
        if timed_out(o, cluster):
            return not_ready(o, cluster)
        return decision(
            Wait(),
            RestorePhase.RESTORING,
            Reason.WAITING_FOR_CLUSTER,
            f"waiting for EtcdCluster {o.cluster_name} to be ready ({cluster.summary})",
        )
    if o.drill is not None:  # a failure is recorded first, so its cluster is deleted too
        return drill_check(o, o.drill, o.served_revision)
    if o.verified is None:  # status lost what the verification found: nothing to check against
        return decision(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.VERIFICATION_LOST,
            "status no longer records the snapshot's revision; the cluster cannot be checked",
        )
    wanted = o.verified.revision
    if o.served_revision < wanted:
        return decision(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.REVISION_BEHIND,
            f"EtcdCluster {o.cluster_name} serves revision {o.served_revision}, below the"
            f" snapshot's {wanted}",
        )
    return decision(
        Succeed(),
        RestorePhase.SUCCEEDED,
        Reason.RESTORED,
        f"EtcdCluster {o.cluster_name} serves the snapshot (revision {o.served_revision} >="
        f" {wanted})",
    )
