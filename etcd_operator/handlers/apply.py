"""Apply one planner step to the world. Each branch is idempotent: running it again after
a crash, or after it already took effect, changes nothing or fails harmlessly."""

from __future__ import annotations

import contextlib
import os
from typing import assert_never

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

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
from etcd_operator.handlers.observe import World
from etcd_operator.naming import cluster_token
from etcd_operator.planner import (
    AddLearner,
    Bootstrap,
    ClusterState,
    CreatePod,
    DeletePod,
    DeletePVC,
    InitialCluster,
    MoveLeader,
    PromoteLearner,
    RemoveMember,
    Step,
    UpgradeMember,
    action_of,
)
from etcd_operator.resources import member_pod, member_pvc
from etcd_operator.resources.pod import DEFAULT_OPERATOR_IMAGE

rbac.needs(Pod, "create", "delete", why="member pods: created per member, deleted when stray")
rbac.needs(
    PersistentVolumeClaim,
    "create",
    "delete",
    why="member claims: created with the pod, deleted when scaled away or stale",
)

_CONFLICT = 409
_NOT_FOUND = 404


class StepNotReady(Exception):
    """The step cannot take effect yet (e.g. a learner still catching up): observe again."""


def operator_image() -> str:
    return os.environ.get("ETCD_OPERATOR_IMAGE") or DEFAULT_OPERATOR_IMAGE


async def apply_step(
    kube: AsyncClient, cluster: EtcdCluster, world: World, step: Step, *, cluster_domain: str
) -> None:
    try:
        await _apply(kube, cluster, world, step, cluster_domain)
    except (ReconfigurationRejected, TooManyLearners) as e:
        # etcd refuses membership changes for a few seconds after a member starts.
        raise StepNotReady(str(e)) from e


async def _apply(
    kube: AsyncClient, cluster: EtcdCluster, world: World, step: Step, domain: str
) -> None:
    action = action_of(step)
    if action is None:
        return  # the step only reports: status says it
    match action:
        case Bootstrap(members=names, initial_cluster=initial, version=version):
            for name in names:
                await _create_member_pod(
                    kube, cluster, name, initial, version, domain=domain, expect_data=False
                )
        case CreatePod(member=name, initial_cluster=initial, version=version):
            await _create_member_pod(
                kube,
                cluster,
                name,
                initial,
                version,
                domain=domain,
                expect_data=_has_voted(world, name),
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
        case DeletePod(member=name):
            await _delete(kube, Pod, name, cluster.namespace)
        case DeletePVC(member=name):
            await _delete(kube, PersistentVolumeClaim, name, cluster.namespace)
        case UpgradeMember(member=name, to_version=version):
            # Replace the pod on the same claim: delete now, recreate once it is gone.
            pod = world.pods.get(name)
            if pod is not None:
                if not (pod.metadata and pod.metadata.deletionTimestamp):
                    await _delete(kube, Pod, name, cluster.namespace)
                return
            initial = _current_cluster(world, cluster)
            await _create_member_pod(
                kube, cluster, name, initial, version, domain=domain, expect_data=True
            )
        case _:
            assert_never(action)


def _current_cluster(world: World, cluster: EtcdCluster) -> InitialCluster:
    """Flags for restarting a member that has data: etcd ignores them, but they must parse."""
    members = world.cluster_members.members if world.cluster_members else ()
    peers = tuple((m.name, url) for m in members if m.name for url in m.peer_urls)
    token = cluster_token(cluster.name, cluster.metadata.uid)
    return InitialCluster(ClusterState.EXISTING, peers, token)


def _has_voted(world: World, name: str) -> bool:
    """A member that has started before must find its data; a fresh learner need not."""
    members = world.cluster_members
    if members is None:
        return False
    member = members.by_name(name)
    return member is not None and member.started


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
    expect_data: bool,
) -> None:
    if not cluster.spec.storage.empty_dir:
        await _create(kube, member_pvc(cluster, name))
    pod = member_pod(
        cluster,
        name,
        version,
        initial,
        expect_data=expect_data,
        operator_image=operator_image(),
        cluster_domain=domain,
    )
    await _create(kube, pod)


async def _create(kube: AsyncClient, obj: Pod | PersistentVolumeClaim) -> None:
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
