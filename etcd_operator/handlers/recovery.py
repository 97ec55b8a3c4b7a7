"""`status.quorumLossRecovery`: the durable record of a rebuild from a survivor of a lost
quorum. Written by the steps themselves (not the round's status write), at the moment it
becomes true: Forcing before the survivor's pod is taken down, Recovered once etcd showed the
survivor alone, so a restarted operator resumes the rebuild and never forces twice."""

from __future__ import annotations

from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.api.cluster_status import QuorumLossRecoveryStatus, RecoveryPhase
from etcd_operator.kube import EtcdClusterResource
from etcd_operator.planner import EndForcedStart, ForceNewCluster

rbac.needs(
    EtcdClusterResource.Status,
    "patch",
    why="status.quorumLossRecovery: a rebuild from a survivor, recorded before its pod goes",
)

RECORD_FIELD = "quorumLossRecovery"  # written only here, never by the round's status write


def _current(cluster: EtcdCluster) -> QuorumLossRecoveryStatus | None:
    return cluster.status.quorum_loss_recovery if cluster.status else None


async def record_forcing(kube: AsyncClient, cluster: EtcdCluster, step: ForceNewCluster) -> None:
    """Record the rebuild from `step.member` (once: a resumed step keeps the first record)."""
    before = _current(cluster)
    mid = f"{step.member_id:x}"
    if before is not None and before.phase == RecoveryPhase.FORCING and before.member_id == mid:
        return
    lost = ", ".join(step.lost) or "none named"
    record = QuorumLossRecoveryStatus(
        phase=RecoveryPhase.FORCING,
        member=step.member,
        memberID=mid,
        lost_members=list(step.lost),
        message=f"rebuilding from {step.member} (member {mid}) with --force-new-cluster;"
        f" lost: {lost}",
        started_at=datetime.now(UTC),
    )
    await _write(kube, cluster, record)


async def record_recovered(kube: AsyncClient, cluster: EtcdCluster, step: EndForcedStart) -> None:
    before = _current(cluster)
    if before is not None and before.phase == RecoveryPhase.RECOVERED:
        return
    mid = f"{step.member_id:x}"
    lost = before.lost_members if before is not None else []
    record = QuorumLossRecoveryStatus(
        phase=RecoveryPhase.RECOVERED,
        member=step.member,
        memberID=mid,
        lost_members=lost,
        message=f"rebuilt from {step.member} (member {mid}), now the only member; the others"
        " rejoin as new members. Writes acknowledged only by the lost members may be gone",
        started_at=before.started_at if before is not None else None,
        finished_at=datetime.now(UTC),
    )
    await _write(kube, cluster, record)


async def _write(kube: AsyncClient, cluster: EtcdCluster, record: QuorumLossRecoveryStatus) -> None:
    payload = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    await kube.patch(
        EtcdClusterResource.Status,
        cluster.name,
        {"status": {RECORD_FIELD: payload}},
        namespace=cluster.namespace,
        patch_type=PatchType.MERGE,
    )
