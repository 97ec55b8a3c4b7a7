"""kopf wiring for EtcdRestore: one daemon per restore, until it Succeeded or Failed.

Each round: observe (the restore, its verification pod and what its logs say, the source claim,
the target EtcdCluster and the revision it serves) -> restore.decide -> apply that one step ->
status if it changed, and an Event when the step acts or the restore ends. Everything the next
round needs is in the world or in status, so the operator may be killed at any point.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import kopf
from lightkube import AsyncClient
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import GROUP, VERSION, EtcdCluster, InvalidSpecError, parse_cluster
from etcd_operator.api.backup import EtcdBackup, parse_backup
from etcd_operator.api.restore import (
    PLURAL,
    DrillResult,
    EtcdRestore,
    RestorePhase,
    parse_restore,
)
from etcd_operator.api.snapshot_source import SnapshotLocation
from etcd_operator.handlers.apply import operator_image
from etcd_operator.handlers.idempotent import create_once, delete_once, get_or_none
from etcd_operator.handlers.restore_drill import Served, drill_metrics, drill_seen, serving
from etcd_operator.handlers.restore_verify import verify_pod
from etcd_operator.handlers.rounds import follow
from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource, EtcdRestoreResource
from etcd_operator.resources.restore import (
    verification_pod,
    verification_pod_name,
)
from etcd_operator.resources.restore_drill import drill_cluster
from etcd_operator.restore.decide import (
    ClusterSeen,
    CreateCluster,
    CreateVerifyPod,
    DeleteCluster,
    DeleteVerifyPod,
    Done,
    Fail,
    RecordDrill,
    RecordVerified,
    RestoreDecision,
    RestoreObserved,
    SnapshotFacts,
    Succeed,
    Wait,
    decide_restore,
)
from etcd_operator.restore.resolve import Unresolved, resolve
from etcd_operator.restore.status import next_restore_status

# On the EtcdCluster a restore creates: which restore (name, and UID to tell it from a later
# restore of the same name) it came from. The cluster has no owner: it outlives the restore.
RESTORED_FROM_ANNOTATION = f"{GROUP}/restored-from"
RESTORE_UID_ANNOTATION = f"{GROUP}/restore-uid"
ROUND_SECONDS = 2.0

rbac.needs(EtcdRestoreResource, "list", "watch", why="kopf: a daemon per restore")
rbac.needs(EtcdRestoreResource, "patch", why="kopf: its finalizer and bookkeeping annotations")
rbac.needs(EtcdRestoreResource, "get", why="each restore round reads the resource afresh")
rbac.needs(EtcdRestoreResource.Status, "patch", why="restore: phase, conditions, revision")
rbac.needs(Pod, "get", "create", "delete", why="restore: the snapshot's verification pod")
rbac.needs(Pod, "get", subresource="log", why="restore: what the verification pod found")
rbac.needs(PersistentVolumeClaim, "get", why="restore: the claim holding the snapshot exists")
rbac.needs(EtcdClusterResource, "get", "create", why="restore: the cluster it creates")
rbac.needs(EtcdClusterResource, "delete", why="restore drill: its throwaway cluster, once checked")
rbac.needs(
    EtcdRestoreResource,
    "update",
    subresource="finalizers",
    why="restore drill: blockOwnerDeletion on its throwaway cluster",
)
rbac.needs(EtcdBackupResource, "get", why="restore: an EtcdBackup's recorded snapshot")


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def restore_forever(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    body: kopf.Body,
    **_: Any,
) -> None:
    ns = namespace or "default"

    async def one_round() -> float | None:
        done = await restore_once(memo.kube, ns, name, body, memo.cluster_domain)
        return None if done else ROUND_SECONDS

    await follow(
        stopped,
        memo.leader,
        one_round,
        what=f"restore round of {ns}/{name}",
        error_delay=ROUND_SECONDS,
    )


async def restore_once(
    kube: AsyncClient, namespace: str, name: str, body: kopf.Body, domain: str
) -> bool:
    """One round; True when the restore has finished."""
    raw = await get_or_none(kube, EtcdRestoreResource, name, namespace)
    if raw is None:
        return True
    try:
        body_dict: dict[str, Any] = raw.to_dict()
        restore = parse_restore(body_dict)
    except InvalidSpecError as e:
        # Admission refuses what the model refuses; an old object may still disagree.
        kopf.warn(body, reason="InvalidSpec", message=str(e)[:1024])
        return True
    location, backup = await _location(kube, restore)
    observed = await observe_restore(kube, restore, domain, location, backup)
    decision = decide_restore(observed)
    if isinstance(decision.step, Done):
        drill_metrics(restore, restore.status)
        return True
    created = await _apply(kube, restore, decision, body_dict, location)
    now = datetime.now(UTC)
    new = next_restore_status(
        restore.status,
        observed,
        decision,
        now=now,
        generation=restore.metadata.generation,
        created=created,
    )
    if new != restore.status:
        await kube.patch(
            EtcdRestoreResource.Status,
            name,
            {"status": new.model_dump(mode="json", by_alias=True, exclude_none=True)},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    _event(body, decision, changed=new.phase is not restore.status.phase)
    drill_metrics(restore, new)
    return decision.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED)


def _event(body: kopf.Body, d: RestoreDecision, *, changed: bool) -> None:
    match d.step:
        case Fail():
            kopf.warn(body, reason=d.reason, message=d.message)
        case RecordDrill(result=DrillResult.FAILED):
            kopf.warn(body, reason=d.reason, message=d.message)
        case Wait():
            if changed:
                kopf.info(body, reason=d.reason, message=d.message)
        case _:
            kopf.info(body, reason=d.reason, message=d.message)


async def _location(
    kube: AsyncClient, restore: EtcdRestore
) -> tuple[SnapshotLocation | Unresolved, EtcdBackup | None]:
    backup = None
    named = restore.spec.source.backup
    raw = None
    if named is not None:
        raw = await get_or_none(kube, EtcdBackupResource, named.name, restore.namespace)
    if raw is not None:
        with contextlib.suppress(InvalidSpecError):
            backup = parse_backup(raw.to_dict())
    return resolve(restore.spec.source, backup), backup


async def _apply(
    kube: AsyncClient,
    restore: EtcdRestore,
    d: RestoreDecision,
    raw: dict[str, Any],
    location: SnapshotLocation | Unresolved,
) -> bool:
    """Apply one step; True when this round created the cluster."""
    ns = restore.namespace
    match d.step:
        case CreateVerifyPod():
            assert isinstance(location, SnapshotLocation), "the decision waits for a location"
            pod = verification_pod(restore, location, operator_image=operator_image())
            await create_once(kube, pod)
        case DeleteVerifyPod():
            await delete_once(kube, Pod, verification_pod_name(restore), ns)
        case CreateCluster():
            assert isinstance(location, SnapshotLocation), "verified, so it has a location"
            await kube.create(_cluster_object(restore, raw, location))
            return True
        case DeleteCluster():
            await delete_once(kube, EtcdClusterResource, restore.spec.cluster.name, ns)
        case RecordVerified() | RecordDrill() | Wait() | Succeed() | Fail() | Done():
            pass
    return False


def _cluster_object(restore: EtcdRestore, raw: dict[str, Any], location: SnapshotLocation) -> Any:
    """The EtcdCluster: the user's spec as written (the server defaults it) plus the verified
    snapshot as `bootstrap.restore`; annotated with the restore, owned by nobody (a drill's:
    one member on an emptyDir, owned by the restore)."""
    user_spec = dict(((raw.get("spec") or {}).get("cluster") or {}).get("spec") or {})
    source = location.to_k8s()
    if restore.status.sha256:  # pin what was verified, also when the spec named no sha256
        source["sha256"] = restore.status.sha256
    spec = {**user_spec, "bootstrap": {"restore": source}}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EtcdCluster",
        "metadata": {
            "name": restore.spec.cluster.name,
            "namespace": restore.namespace,
            "annotations": {
                RESTORED_FROM_ANNOTATION: restore.name,
                RESTORE_UID_ANNOTATION: restore.metadata.uid,
            },
        },
        "spec": spec,
    }
    if restore.spec.drill:
        body = drill_cluster(restore, body)
    return EtcdClusterResource.from_dict(body)


async def observe_restore(
    kube: AsyncClient,
    restore: EtcdRestore,
    domain: str,
    location: SnapshotLocation | Unresolved,
    backup: EtcdBackup | None = None,
) -> RestoreObserved:
    status = restore.status
    verified = None
    if status.revision is not None and any(
        c.type == "Verified" and c.status.value == "True" for c in status.conditions
    ):
        verified = SnapshotFacts(status.revision, status.sha256, status.size)
    cluster, ready_cluster = await _cluster(kube, restore)
    served: Served | None = None
    count_at = None
    if restore.spec.drill and status.drill is not None and status.drill.expected_keys is not None:
        count_at = status.drill.expected_revision
    recorded = status.drill is not None and status.drill.result is not None
    if cluster is not None and cluster.ready and ready_cluster is not None and not recorded:
        served = await serving(kube, ready_cluster, domain, count_at)
    pod = None
    if cluster is None or cluster.restored_by == restore.metadata.uid:
        pod = await verify_pod(kube, restore)
    source_exists = True
    unresolved = None
    if isinstance(location, Unresolved):
        unresolved = (location.pending, location.reason, location.message)
    elif pod is None and verified is None and cluster is None:
        source_exists = await _claim_exists(kube, restore.namespace, location)
    return RestoreObserved(
        uid=restore.metadata.uid,
        cluster_name=restore.spec.cluster.name,
        source=restore.spec.source.describe(),
        phase=status.phase,
        verified=verified,
        cluster_recorded=status.cluster_name is not None,
        source_exists=source_exists,
        pod=pod,
        cluster=cluster,
        served_revision=served.revision if served else None,
        unresolved=unresolved,
        drill=drill_seen(restore, backup, served) if restore.spec.drill else None,
        now=datetime.now(UTC),
        ready_timeout=restore.spec.ready_within,
    )


async def _cluster(
    kube: AsyncClient, restore: EtcdRestore
) -> tuple[ClusterSeen | None, EtcdCluster | None]:
    raw = await get_or_none(kube, EtcdClusterResource, restore.spec.cluster.name, restore.namespace)
    if raw is None:
        return None, None
    body: dict[str, Any] = raw.to_dict()
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    seen_status = body.get("status") or {}
    phase = str(seen_status.get("phase") or "Pending")
    replicas = int((body.get("spec") or {}).get("replicas") or 0)
    ready = phase == "Running" and int(seen_status.get("readyReplicas") or 0) >= replicas
    try:
        typed: EtcdCluster | None = parse_cluster(body)
    except InvalidSpecError:
        typed = None
    metadata = body.get("metadata") or {}
    created = metadata.get("creationTimestamp")
    seen = ClusterSeen(
        annotations.get(RESTORE_UID_ANNOTATION),
        ready,
        phase,
        created=_timestamp(created),
        deleting=bool(metadata.get("deletionTimestamp")),
    )
    return seen, typed


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


async def _claim_exists(kube: AsyncClient, namespace: str, location: SnapshotLocation) -> bool:
    """Whether the source claim exists (an S3 object is checked by the verification pod)."""
    volume = location.volume
    if volume is None:
        return True
    return await get_or_none(kube, PersistentVolumeClaim, volume.claim_name, namespace) is not None


__all__ = ["RESTORED_FROM_ANNOTATION", "RESTORE_UID_ANNOTATION", "restore_forever", "restore_once"]
