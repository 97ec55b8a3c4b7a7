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


def _failed(
    reason: Reason, why: str, served: int | None = None, keys: int | None = None
) -> RestoreDecision:
    """Record a failed drill; its throwaway cluster is deleted next."""
    return decision(
        RecordDrill(DrillResult.FAILED, served, keys),
        RestorePhase.RESTORING,
        reason,
        f"restore drill FAILED: {why}",
    )


def _passed(served: int, keys: int | None, expected: int, what: str) -> RestoreDecision:
    """Record a passed drill; its throwaway cluster is deleted next."""
    return decision(
        RecordDrill(DrillResult.PASSED, served, keys),
        RestorePhase.RESTORING,
        Reason.DRILL_PASSED,
        f"restore drill passed: the restored cluster serves revision {served} >= {expected} {what}",
    )


def not_ready(o: RestoreObserved, cluster: ClusterSeen) -> RestoreDecision:
    what = (
        f"EtcdCluster {o.cluster_name} is not ready {o.ready_timeout} after its creation"
        f" ({cluster.summary})"
    )
    if o.drill is not None:
        return _failed(Reason.CLUSTER_NOT_READY, f"{what}; the throwaway cluster is deleted")
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
        return _failed(Reason.VERIFICATION_LOST, "status no longer records what to expect", served)
    if served < expected.revision:
        return _failed(
            Reason.REVISION_BEHIND,
            f"the restored cluster serves revision {served}, below the backup's"
            f" {expected.revision}",
            served,
        )
    if expected.keys is None:
        return _passed(
            served, None, expected.revision, "(no key count was recorded: revision checked only)"
        )
    if drill.keys_error is not None:
        return _failed(
            Reason.KEY_COUNT_MISMATCH,
            f"the restored cluster cannot count its keys at revision {expected.revision}:"
            f" {drill.keys_error}",
            served,
        )
    if drill.served_keys is None:
        return decision(
            Wait(),
            RestorePhase.RESTORING,
            Reason.WAITING_FOR_CLUSTER,
            f"counting the keys of EtcdCluster {o.cluster_name}",
        )
    if drill.served_keys != expected.keys:
        return _failed(
            Reason.KEY_COUNT_MISMATCH,
            f"the restored cluster holds {drill.served_keys} keys at revision"
            f" {expected.revision}, the backup recorded {expected.keys}",
            served,
            drill.served_keys,
        )
    return _passed(
        served,
        drill.served_keys,
        expected.revision,
        f"and holds the backup's {expected.keys} keys at it",
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
