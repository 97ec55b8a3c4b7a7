"""The EtcdRestore decisions particular to a drill (`spec.drill`) and to the ready timeout
(pure).

A drill's throwaway cluster is checked once ready (the backup's recorded revision and key
count), the result is written to status, and only then is the cluster deleted: a round that
dies after the check finds the result and deletes; one that dies before it checks again.
"""

from __future__ import annotations

from etcd_operator.api.restore import DrillResult, RestorePhase
from etcd_operator.restore.model import (
    ClusterSeen,
    DeleteCluster,
    DrillSeen,
    Fail,
    Reason,
    RecordDrill,
    RestoreDecision,
    RestoreObserved,
    Succeed,
    Wait,
    decision,
)


def timed_out(o: RestoreObserved, cluster: ClusterSeen) -> bool:
    return (
        o.now is not None
        and cluster.created is not None
        and o.now - cluster.created > o.ready_timeout
    )


def not_ready(o: RestoreObserved, cluster: ClusterSeen) -> RestoreDecision:
    what = (
        f"EtcdCluster {o.cluster_name} is not ready {o.ready_timeout} after its creation"
        f" ({cluster.summary})"
    )
    if o.drill is not None:
        return decision(
            RecordDrill(DrillResult.FAILED),
            RestorePhase.RESTORING,
            Reason.CLUSTER_NOT_READY,
            f"restore drill FAILED: {what}; the throwaway cluster is deleted",
        )
    return decision(
        Fail(snapshot=False),
        RestorePhase.FAILED,
        Reason.CLUSTER_NOT_READY,
        f"{what}; it is left in place for inspection (its conditions and Events say why), delete"
        " it when done",
    )


def drill_check(o: RestoreObserved, drill: DrillSeen, served: int) -> RestoreDecision:
    """The throwaway cluster is ready: does it serve what the backup recorded?"""
    expected = drill.expected
    if expected is None:
        return decision(
            RecordDrill(DrillResult.FAILED, served),
            RestorePhase.RESTORING,
            Reason.VERIFICATION_LOST,
            "restore drill FAILED: status no longer records what to expect",
        )
    if served < expected.revision:
        return decision(
            RecordDrill(DrillResult.FAILED, served),
            RestorePhase.RESTORING,
            Reason.REVISION_BEHIND,
            f"restore drill FAILED: the restored cluster serves revision {served}, below the"
            f" backup's {expected.revision}",
        )
    if expected.keys is None:
        return decision(
            RecordDrill(DrillResult.PASSED, served),
            RestorePhase.RESTORING,
            Reason.DRILL_PASSED,
            f"restore drill passed: the restored cluster serves revision {served} >="
            f" {expected.revision} (no key count was recorded: revision checked only)",
        )
    if drill.keys_error is not None:
        return decision(
            RecordDrill(DrillResult.FAILED, served),
            RestorePhase.RESTORING,
            Reason.KEY_COUNT_MISMATCH,
            f"restore drill FAILED: the restored cluster cannot count its keys at revision"
            f" {expected.revision}: {drill.keys_error}",
        )
    if drill.served_keys is None:
        return decision(
            Wait(),
            RestorePhase.RESTORING,
            Reason.WAITING_FOR_CLUSTER,
            f"counting the keys of EtcdCluster {o.cluster_name}",
        )
    if drill.served_keys != expected.keys:
        return decision(
            RecordDrill(DrillResult.FAILED, served, drill.served_keys),
            RestorePhase.RESTORING,
            Reason.KEY_COUNT_MISMATCH,
            f"restore drill FAILED: the restored cluster holds {drill.served_keys} keys at"
            f" revision {expected.revision}, the backup recorded {expected.keys}",
        )
    return decision(
        RecordDrill(DrillResult.PASSED, served, drill.served_keys),
        RestorePhase.RESTORING,
        Reason.DRILL_PASSED,
        f"restore drill passed: the restored cluster serves revision {served} >="
        f" {expected.revision} and holds the backup's {expected.keys} keys at it",
    )


def drill_finish(o: RestoreObserved, recorded: tuple[DrillResult, str, str]) -> RestoreDecision:
    """The result is recorded: delete the throwaway cluster, then end with that result."""
    result, reason, message = recorded
    cluster = o.cluster
    if cluster is not None and cluster.restored_by == o.uid:
        if cluster.deleting:
            return decision(
                Wait(),
                RestorePhase.RESTORING,
                Reason.DELETING_DRILL_CLUSTER,
                f"waiting for the throwaway EtcdCluster {o.cluster_name} to be deleted",
            )
        return decision(
            DeleteCluster(),
            RestorePhase.RESTORING,
            Reason.DELETING_DRILL_CLUSTER,
            f"deleting the throwaway EtcdCluster {o.cluster_name} ({result.value})",
        )
    if result is DrillResult.PASSED:
        return decision(Succeed(), RestorePhase.SUCCEEDED, reason, message)
    return decision(Fail(snapshot=False), RestorePhase.FAILED, reason, message)
