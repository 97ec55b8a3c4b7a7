"""The shell of an in-place rollback (planner/rollback.py decides): what the request, the
backup and its verification pod say; the verification pod made and removed; `status.rollback`
written from the round's decision."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster, InvalidSpecError
from etcd_operator.api.backup import BackupPhase, EtcdBackup, parse_backup
from etcd_operator.api.cluster_status import RollbackStatus
from etcd_operator.api.recovery_spec import QuorumLossRecovery
from etcd_operator.api.restore import BackupRef, RestoreSource
from etcd_operator.api.rollback_spec import confirmation
from etcd_operator.api.snapshot_source import SnapshotLocation
from etcd_operator.handlers.restore_verify import verification
from etcd_operator.kube import EtcdBackupResource
from etcd_operator.planner import (
    Decision,
    Observed,
    RecordRollback,
    RollbackPhase,
)
from etcd_operator.planner.model import (
    BackupFacts,
    RollbackRecord,
    RollbackRequest,
    RollbackState,
    SnapshotCheck,
)
from etcd_operator.planner.rollback import QUORUM_LOSS
from etcd_operator.resources.labels import owner_reference
from etcd_operator.resources.restore import snapshot_check_pod
from etcd_operator.restore.decide import VerifyPod
from etcd_operator.restore.resolve import Unresolved, resolve

rbac.needs(EtcdBackupResource, "get", why="rollback: the EtcdBackup a cluster rolls back to")
rbac.needs(
    EtcdBackupResource,
    "list",
    why="quorum loss FromLatestBackup: the newest Succeeded backup, listed only while no member"
    " answers",
)
rbac.needs(Pod, "get", "create", "delete", why="rollback: the snapshot's verification pod")
rbac.needs(Pod, "get", subresource="log", why="rollback: what the verification pod found")

_NOT_FOUND = 404
_CONFLICT = 409


@dataclass(frozen=True, slots=True)
class RollbackSeen:
    """What observe found, for the planner and for this round's apply and status."""

    state: RollbackState
    backup: EtcdBackup | None = None
    location: SnapshotLocation | None = None  # where the requested backup's snapshot is


def verification_pod_name(cluster: EtcdCluster, backup_uid: str) -> str:
    """One pod per cluster and backup (a request changed to another backup gets its own)."""
    digest = hashlib.sha256(backup_uid.encode()).hexdigest()[:10]
    return f"{cluster.name[:200]}-rollback-verify-{digest}"


def record_of(cluster: EtcdCluster) -> RollbackRecord | None:
    status = cluster.status.rollback if cluster.status else None
    if status is None:
        return None
    try:
        phase = RollbackPhase(status.phase)
    except ValueError:
        return None
    if status.cause == QUORUM_LOSS:
        requested, requested_uid = status.requested_backup, status.requested_backup_uid
    else:
        requested, requested_uid = status.backup, status.backup_uid
    return RollbackRecord(
        phase,
        status.backup,
        status.backup_uid,
        status.epoch,
        requested=requested,
        requested_uid=requested_uid,
        started=tuple(status.started_members),
        formed=status.formed,
    )


def snapshot_of(cluster: EtcdCluster) -> SnapshotLocation | None:
    """The snapshot a rollback under way restores (recorded in status when it started)."""
    status = cluster.status.rollback if cluster.status else None
    if status is None or status.snapshot is None:
        return None
    location = status.snapshot
    if status.sha256:  # pin what was verified
        location = location.model_copy(update={"sha256": status.sha256})
    return location


async def observe_rollback(
    kube: AsyncClient, cluster: EtcdCluster, *, answered: bool
) -> RollbackSeen:
    """Reads the backup and its verification pod only while a request is not yet done, or
    (spec.recovery FromLatestBackup) while no member answers: then the newest Succeeded
    backup of this cluster. `answered`: some member answered this round."""
    seen = await _observe(kube, cluster, answered=answered)
    last = cluster.status.last_seen_revision if cluster.status else None
    return replace(seen, state=replace(seen.state, last_seen_revision=last))


async def _observe(kube: AsyncClient, cluster: EtcdCluster, *, answered: bool) -> RollbackSeen:
    record = record_of(cluster)
    spec = cluster.spec.rollback
    in_flight = record is not None and record.phase is not RollbackPhase.COMPLETED
    recovering = cluster.spec.recovery.quorum_loss is QuorumLossRecovery.FROM_LATEST_BACKUP
    # A request already done (status names its backup) does not stand in the way of recovery.
    done = (
        spec is not None
        and record is not None
        and spec.backup in (name for name, _ in record.done())
    )
    if (spec is None or done) and recovering and not answered and not in_flight:
        newest, earlier = await _newest_backup(kube, cluster)
        if newest is None:
            return RollbackSeen(RollbackState(record=record, earlier=earlier))
        request = RollbackRequest(newest.name, cause=QUORUM_LOSS)
        return await _about(kube, cluster, newest, RollbackState(record=record, recovery=request))
    if spec is None:
        return RollbackSeen(RollbackState(record=record))
    request = RollbackRequest(
        spec.backup,
        confirmed=spec.confirm == confirmation(cluster.name, spec.backup),
        allow_other_cluster=spec.allow_other_cluster,
    )
    if in_flight or done:
        return RollbackSeen(RollbackState(request, None, None, record))
    backup = await _backup(kube, cluster.namespace, spec.backup)
    if backup is None:
        return RollbackSeen(RollbackState(request, None, None, record))
    return await _about(kube, cluster, backup, RollbackState(request, record=record))


async def _about(
    kube: AsyncClient, cluster: EtcdCluster, backup: EtcdBackup, state: RollbackState
) -> RollbackSeen:
    """`state` completed with what `backup` records and what its verification pod found."""
    location = resolve(RestoreSource(backup=BackupRef(name=backup.name)), backup)
    facts = _facts(backup, location)
    check = None
    if isinstance(location, SnapshotLocation) and backup.metadata.uid:
        name = verification_pod_name(cluster, backup.metadata.uid)
        pod = await verification(kube, name, cluster.namespace)
        check = _check(pod) if pod is not None else None
    found = location if isinstance(location, SnapshotLocation) else None
    return RollbackSeen(replace(state, backup=facts, check=check), backup, found)


async def _newest_backup(
    kube: AsyncClient, cluster: EtcdCluster
) -> tuple[EtcdBackup | None, tuple[BackupFacts, ...]]:
    """The newest Succeeded EtcdBackup of this cluster (by when its snapshot was stored), and
    the Succeeded ones skipped as an earlier cluster's of the same name (to say so)."""
    newest: EtcdBackup | None = None
    earlier: list[BackupFacts] = []
    async for raw in kube.list(EtcdBackupResource, namespace=cluster.namespace):
        try:
            backup = parse_backup(raw.to_dict())  # type: ignore[no-untyped-call]
        except InvalidSpecError:
            continue
        status = backup.status
        if backup.spec.cluster_name != cluster.name or status is None:
            continue
        if status.phase is not BackupPhase.SUCCEEDED or status.completion_time is None:
            continue
        if status.cluster_uid and status.cluster_uid != cluster.metadata.uid:
            # An earlier cluster's of the same name: never restored automatically.
            earlier.append(_facts(backup, None))
            continue
        newest_time = newest.status.completion_time if newest and newest.status else None
        if newest_time is None or status.completion_time > newest_time:
            newest = backup
    return newest, tuple(sorted(earlier, key=lambda b: b.name))


async def _backup(kube: AsyncClient, namespace: str, name: str) -> EtcdBackup | None:
    try:
        raw = await kube.get(EtcdBackupResource, name, namespace=namespace)
        return parse_backup(raw.to_dict())  # type: ignore[no-untyped-call]
    except ApiError as e:
        if e.status.code == _NOT_FOUND:
            return None
        raise
    except InvalidSpecError:
        return None


def _facts(backup: EtcdBackup, location: SnapshotLocation | Unresolved | None) -> BackupFacts:
    """What `backup` records; `location`: its snapshot's, when it is to be read."""
    status = backup.status
    unreadable = None
    if isinstance(location, Unresolved) and not location.pending:
        unreadable = location.message
    return BackupFacts(
        name=backup.name,
        uid=backup.metadata.uid,
        phase=(status.phase.value if status and status.phase else ""),
        cluster_name=backup.spec.cluster_name,
        cluster_uid=status.cluster_uid if status else None,
        unreadable=unreadable,
        revision=status.revision if status else None,
        completed_at=status.completion_time if status else None,
    )


def _check(pod: VerifyPod) -> SnapshotCheck:
    if pod.phase == "Succeeded":
        if pod.facts is None:
            return SnapshotCheck(True, False, problem="its findings could not be read")
        return SnapshotCheck(True, True, pod.facts.revision, pod.facts.sha256)
    if pod.phase == "Failed":
        reason, message = pod.failure or ("VerificationFailed", "the verification pod failed")
        return SnapshotCheck(True, False, problem=f"{reason}: {message}")
    return SnapshotCheck()


async def create_verification_pod(
    kube: AsyncClient, cluster: EtcdCluster, seen: RollbackSeen, *, operator_image: str
) -> None:
    if seen.location is None or seen.backup is None:
        raise ValueError("no readable snapshot to verify")
    pod = snapshot_check_pod(
        verification_pod_name(cluster, seen.backup.metadata.uid),
        cluster.namespace,
        owner_reference(cluster),
        seen.location,
        etcd_image=cluster.spec.effective_image,
        operator_image=operator_image,
        component="rollback",
    )
    try:
        await kube.create(pod)
    except ApiError as e:
        if e.status.code != _CONFLICT:
            raise


async def delete_verification_pod(kube: AsyncClient, cluster: EtcdCluster, backup_uid: str) -> None:
    name = verification_pod_name(cluster, backup_uid)
    with contextlib.suppress(ApiError):
        await kube.delete(Pod, name, namespace=cluster.namespace)


def seen_revision(observed: Observed, previous: int | None) -> int | None:
    """The highest revision a member serves now (lower only after a rollback), else
    `previous` (no member answers)."""
    served = [h.revision for h in observed.member_health.values() if h.reachable and h.revision]
    return max(served) if served else previous


def next_rollback_status(
    decision: Decision,
    previous: RollbackStatus | None,
    seen: RollbackSeen,
    *,
    cluster_id: str | None,
    now: datetime,
) -> RollbackStatus | None:
    """`status.rollback` after this round: changed only by a `RecordRollback` step."""
    step = decision.step
    if not isinstance(step, RecordRollback):
        return previous
    if step.phase is RollbackPhase.STOPPING:
        backup = seen.backup
        completed = backup.status.completion_time if backup and backup.status else None
        # A recovery keeps which spec.rollback request was done already (see record_of).
        before = seen.state.record if step.cause == QUORUM_LOSS else None
        return RollbackStatus(
            phase=step.phase.value,
            cause=step.cause,
            backup=step.backup,
            backup_uid=step.backup_uid,
            requested_backup=before.requested if before else None,
            requested_backup_uid=before.requested_uid if before else "",
            backup_completion_time=completed,
            sha256=step.sha256,
            revision=step.revision,
            from_revision=step.from_revision,
            fromClusterID=cluster_id,
            epoch=step.epoch,
            snapshot=seen.location,
            start_time=now,
            message=decision.message,
        )
    if previous is None:
        return None
    update: dict[str, object] = {
        "phase": step.phase.value,
        "message": decision.message,
        "started_members": list(step.started),
        "formed": step.formed,
    }
    if step.phase is RollbackPhase.COMPLETED:
        update["completion_time"] = now
        update["message"] = (
            f"rolled back from revision {previous.from_revision} to revision"
            f" {previous.revision} of EtcdBackup {previous.backup}"
        )
    return previous.model_copy(update=update)
