"""Apply one planner step to the world. Each branch is idempotent: running it again after
a crash, or after it already took effect, changes nothing or fails harmlessly."""

from __future__ import annotations

import contextlib
import os
from typing import assert_never

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.etcd import (
    EtcdClient,
    EtcdUnavailable,
    LearnerNotReady,
    MemberExists,
    MemberNotFound,
    MemberNotLearner,
    ReconfigurationRejected,
    TooManyLearners,
)
from etcd_operator.handlers.auth import enable_auth, root_credentials
from etcd_operator.handlers.downgrade import cancel_downgrade, enable_downgrade
from etcd_operator.handlers.observe import World
from etcd_operator.handlers.recovery import record_forcing, record_recovered
from etcd_operator.handlers.rollback import (
    create_verification_pod,
    delete_verification_pod,
    snapshot_of,
)
from etcd_operator.handlers.space import apply_space
from etcd_operator.naming import MemberTLS, cluster_token, pvc_name
from etcd_operator.planner import (
    AddLearner,
    Bootstrap,
    CancelDowngrade,
    ClusterState,
    Compact,
    CreatePod,
    Defragment,
    DeletePod,
    DeletePVC,
    DisableAuth,
    DisarmAlarm,
    EnableAuth,
    EnableDowngrade,
    EndForcedStart,
    ExpandVolume,
    ForceNewCluster,
    InitialCluster,
    MoveLeader,
    PromoteLearner,
    RecordRollback,
    RecordVolume,
    RemoveMember,
    RetireVolume,
    RollbackPhase,
    Step,
    UpdatePeerURL,
    UpgradeMember,
    VerifyBackup,
    action_of,
    claim_of,
)
from etcd_operator.resources import member_pod, member_pvc
from etcd_operator.resources.labels import (
    CLUSTER_UID_LABEL,
    FORCE_NEW_CLUSTER_ANNOTATION,
    MEMBER_ID_ANNOTATION,
    MEMBER_LABEL,
    RETIRED_ANNOTATION,
)
from etcd_operator.resources.pod import DEFAULT_OPERATOR_IMAGE
from etcd_operator.tls.rotation import Trust

rbac.needs(Pod, "create", "delete", why="member pods: created per member, deleted when stray")
rbac.needs(
    PersistentVolumeClaim,
    "get",
    "create",
    "patch",
    "delete",
    why="member claims: created with the pod (an existing one is checked before use), records"
    " of whose data they hold patched on, grown to spec.storage.size, deleted only when the"
    " retention policy says so",
)
rbac.needs(
    Pod,
    "create",
    subresource="eviction",
    why="restarts for upgrades and rollouts: the disruption budget arbitrates with drains",
)

_CONFLICT = 409
_NOT_FOUND = 404
_TOO_MANY_REQUESTS = 429  # an eviction the disruption budget refuses now


class StepNotReady(Exception):
    """The step cannot take effect yet (e.g. a learner still catching up): observe again."""


class ForeignClaim(Exception):
    """A claim the step needs exists and is not this member's: the operator never adopts it."""


def operator_image() -> str:
    return os.environ.get("ETCD_OPERATOR_IMAGE") or DEFAULT_OPERATOR_IMAGE


async def apply_step(
    kube: AsyncClient,
    cluster: EtcdCluster,
    world: World,
    step: Step,
    *,
    cluster_domain: str,
    trust: Trust | None = None,
) -> None:
    """`trust`: what the TLS Secrets' ca.crt hold now, recorded on pods created."""
    try:
        await _apply(kube, cluster, world, step, cluster_domain, trust=trust)
    except (ReconfigurationRejected, TooManyLearners) as e:
        # etcd refuses membership changes for a few seconds after a member starts.
        raise StepNotReady(str(e)) from e


async def _apply(
    kube: AsyncClient,
    cluster: EtcdCluster,
    world: World,
    step: Step,
    domain: str,
    *,
    trust: Trust | None = None,
) -> None:
    action = action_of(step)
    if action is None:
        return  # the step only reports: status says it
    match action:
        case Bootstrap(
            members=names, initial_cluster=initial, version=version, tls=tls, restore=restore
        ):
            for name in names:
                await _create_member_pod(
                    kube,
                    cluster,
                    name,
                    initial,
                    version,
                    domain=domain,
                    tls=tls,
                    # Free claims: after a rollback the default names hold retired volumes.
                    claim=claim_of(world.observed, name),
                    trust=trust,
                    restore=restore,
                )
        case CreatePod(
            member=name,
            initial_cluster=initial,
            version=version,
            claim=claim,
            member_id=mid,
            tls=tls,
            restore=restore,
        ):
            await _create_member_pod(
                kube,
                cluster,
                name,
                initial,
                version,
                domain=domain,
                tls=tls,
                claim=claim or None,
                member_id=mid,
                trust=trust,
                restore=restore,
            )
        case AddLearner(peer_url=url):
            # MemberExists: added in an earlier round whose answer we never saw.
            with contextlib.suppress(MemberExists):
                await _etcd(world).member_add([url], learner=True)
        case PromoteLearner(member_id=member_id):
            try:
                await _etcd(world).member_promote(member_id)
            except MemberNotLearner:
                pass
            except LearnerNotReady as e:
                raise StepNotReady(str(e)) from e
        case MoveLeader(to_id=to_id):
            await _etcd(world).move_leader(to_id)
        case RemoveMember(member_id=member_id):
            # The client observe used knows which member answers at which endpoint, so the
            # request goes through another member than the one removed.
            with contextlib.suppress(MemberNotFound):
                await _etcd(world).member_remove(member_id)
        case UpdatePeerURL(member_id=member_id, peer_url=url):
            await _etcd(world).member_update(member_id, [url])
        case DeletePod(member=name):
            await _delete(kube, Pod, name, cluster.namespace)
        case DeletePVC(member=name, claim=claim):
            await _delete(kube, PersistentVolumeClaim, claim or pvc_name(name), cluster.namespace)
        case RecordVolume(claim=claim, member_id=mid):
            await _patch_claim(
                kube,
                cluster,
                claim,
                labels={CLUSTER_UID_LABEL: cluster.metadata.uid},
                annotations={MEMBER_ID_ANNOTATION: f"{mid:x}"},
            )
        case RetireVolume(claim=claim):
            await _patch_claim(kube, cluster, claim, annotations={RETIRED_ANNOTATION: "true"})
        case UpgradeMember(member=name, member_id=mid, to_version=version, evict=evict, tls=tls):
            # Replace the pod on the same claim: take it down now, recreate once it is gone.
            pod = world.pods.get(name)
            if pod is not None:
                if not (pod.metadata and pod.metadata.deletionTimestamp):
                    if evict:
                        await _evict(kube, name, cluster.namespace)
                    else:
                        await _delete(kube, Pod, name, cluster.namespace)
                return
            initial = _current_cluster(world, cluster)
            recorded = world.observed.pvcs.get(name)
            await _create_member_pod(
                kube,
                cluster,
                name,
                initial,
                version,
                domain=domain,
                tls=tls,
                claim=claim_of(world.observed, name),
                member_id=mid if mid is not None else recorded.member_id if recorded else None,
                trust=trust,
            )
        case ExpandVolume(claim=claim):
            size = cluster.spec.storage.size
            await _patch_claim(kube, cluster, claim, storage=size)
        case EnableAuth():
            root = await root_credentials(kube, cluster)
            await enable_auth(_etcd(world), root)
        case DisableAuth():
            await _etcd(world).auth_disable()
        case VerifyBackup():
            await create_verification_pod(
                kube, cluster, world.rollback, operator_image=operator_image()
            )
        case RecordRollback(phase=phase, backup_uid=uid):
            # status records the phase (after this); the checked snapshot's pod is no longer needed.
            if phase is RollbackPhase.COMPLETED:
                await delete_verification_pod(kube, cluster, uid)
        case Compact() | Defragment() | DisarmAlarm():
            await apply_space(_etcd(world), world.health, action)
        case ForceNewCluster(
            member=name, member_id=mid, initial_cluster=initial, version=version, tls=tls
        ):
            await record_forcing(kube, cluster, action)  # first: a killed operator resumes it
            pod = world.pods.get(name)
            if pod is not None:
                # Its pod goes first; once gone, it comes back flagged, on the same claim.
                if not _forced(pod) and not (pod.metadata and pod.metadata.deletionTimestamp):
                    await _delete(kube, Pod, name, cluster.namespace)
                return
            await _create_member_pod(
                kube,
                cluster,
                name,
                initial,
                version,
                domain=domain,
                tls=tls,
                claim=action.claim or None,
                member_id=mid,
                trust=trust,
                force_new_cluster=True,
            )
        case EndForcedStart(member=name):
            await record_recovered(kube, cluster, action)  # before the flag's pod goes
            pod = world.pods.get(name)
            if pod is not None and _forced(pod):
                await _delete(kube, Pod, name, cluster.namespace)
        case EnableDowngrade(version=version):
            await enable_downgrade(_etcd(world), version)
        case CancelDowngrade(member_id=member_id):
            await cancel_downgrade(world, _etcd(world), member_id)
        case _:
            assert_never(action)


def _forced(pod: Pod) -> bool:
    annotations = (pod.metadata.annotations if pod.metadata else None) or {}
    return annotations.get(FORCE_NEW_CLUSTER_ANNOTATION) == "true"


def _current_cluster(world: World, cluster: EtcdCluster) -> InitialCluster:
    """Flags for restarting a member that has data: etcd ignores them, but they must parse."""
    members = world.cluster_members.members if world.cluster_members else ()
    peers = tuple((m.name, url) for m in members if m.name for url in m.peer_urls)
    token = cluster_token(cluster.name, cluster.metadata.uid)
    return InitialCluster(ClusterState.EXISTING, peers, token)


def _etcd(world: World) -> EtcdClient:
    """The client this round observed etcd through (the cluster's, kept across rounds)."""
    if world.etcd is None:
        raise EtcdUnavailable("no member pod to reach etcd through")
    return world.etcd


async def _create_member_pod(
    kube: AsyncClient,
    cluster: EtcdCluster,
    name: str,
    initial: InitialCluster,
    version: str,
    *,
    domain: str,
    tls: MemberTLS,
    claim: str | None = None,
    member_id: int | None = None,
    trust: Trust | None = None,
    restore: bool = False,
    force_new_cluster: bool = False,
) -> None:
    """`tls`: the schemes the planner chose for the member's pod (its registered peer URL's,
    and plaintext clients beside TLS ones while a cluster switches to TLS)."""
    claim = claim or pvc_name(name)
    # A rollback under way restores the snapshot status recorded when it started.
    snapshot = (snapshot_of(cluster) or cluster.spec.bootstrap.restore) if restore else None
    if restore and snapshot is None:
        raise ValueError("the step restores a snapshot but spec.bootstrap.restore names none")
    if not cluster.spec.storage.empty_dir:
        await _create_claim(kube, cluster, name, claim)
    pod = member_pod(
        cluster,
        name,
        version,
        initial,
        member_id=member_id,
        claim=claim,
        operator_image=operator_image(),
        cluster_domain=domain,
        tls=tls,
        trust=trust,
        restore=snapshot,
        force_new_cluster=force_new_cluster,
    )
    await _create(kube, pod)


async def _create_claim(kube: AsyncClient, cluster: EtcdCluster, member: str, claim: str) -> None:
    """Create the claim, or find it made by an earlier round. A claim of that name that is not a
    fresh or current one of this member is never adopted (it may hold another cluster's data)."""
    try:
        await kube.create(member_pvc(cluster, member, claim))
        return
    except ApiError as e:
        if e.status.code != _CONFLICT:
            raise
    existing = await kube.get(PersistentVolumeClaim, claim, namespace=cluster.namespace)
    meta = existing.metadata
    labels = (meta.labels if meta else None) or {}
    annotations = (meta.annotations if meta else None) or {}
    ours = labels.get(CLUSTER_UID_LABEL) == cluster.metadata.uid
    if not ours or labels.get(MEMBER_LABEL) != member or RETIRED_ANNOTATION in annotations:
        raise ForeignClaim(
            f"claim {claim} exists but is not {member}'s of this cluster (uid"
            f" {cluster.metadata.uid}); it is left alone"
        )


async def _patch_claim(
    kube: AsyncClient,
    cluster: EtcdCluster,
    claim: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    storage: str | None = None,
) -> None:
    """Merge-patch records onto a claim, or (`storage`) grow its request."""
    patch: dict[str, object] = {
        "metadata": {"labels": labels or {}, "annotations": annotations or {}}
    }
    if storage is not None:
        patch["spec"] = {"resources": {"requests": {"storage": storage}}}
    await kube.patch(
        PersistentVolumeClaim,
        claim,
        patch,
        namespace=cluster.namespace,
        patch_type=PatchType.MERGE,
    )


async def _create(kube: AsyncClient, obj: Pod) -> None:
    try:
        await kube.create(obj)
    except ApiError as e:
        if e.status.code != _CONFLICT:
            raise


async def _delete(
    kube: AsyncClient, kind: type[Pod] | type[PersistentVolumeClaim], name: str, namespace: str
) -> None:
    try:
        await kube.delete(kind, name, namespace=namespace)
    except ApiError as e:
        if e.status.code != _NOT_FOUND:
            raise


async def _evict(kube: AsyncClient, name: str, namespace: str) -> None:
    """Take a member's pod down through the Eviction API: the PodDisruptionBudget (quorum of
    the voters) decides, so a node drain at the same moment cannot take a second member down.
    A refusal (429) is "not now": the round ends without error and the next one decides
    again from what it sees."""
    eviction = Pod.Eviction(metadata=ObjectMeta(name=name, namespace=namespace))
    try:
        await kube.create(eviction, name=name, namespace=namespace)
    except ApiError as e:
        if e.status.code == _TOO_MANY_REQUESTS:
            raise StepNotReady(f"the disruption budget refuses to evict {name} now") from e
        if e.status.code != _NOT_FOUND:
            raise
