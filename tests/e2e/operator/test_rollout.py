"""Spec changes and voluntary disruptions: a spec change restarts every member once, one at a
time; a node drain during an upgrade never takes a second member down (the disruption budget
arbitrates); emptyDir members are replaced, keeping the data; claims grow in place or the
cluster says why not."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.resources.storage_v1 import StorageClass

from harness.clusters import (
    condition,
    create_ready_cluster,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)

pytestmark = pytest.mark.e2e

QUOTA = 3 * 1024**3


def _ready(pod: Pod) -> bool:
    conditions = (pod.status.conditions or []) if pod.status else []
    return not (pod.metadata and pod.metadata.deletionTimestamp) and any(
        c.type == "Ready" and c.status == "True" for c in conditions
    )


async def _watch_down(
    kube: AsyncClient, ns: str, name: str, replicas: int, done: Callable[[], Awaitable[bool]]
) -> dict[str, set[str]]:
    """Observe the member pods until `done`: never more than one member may be down (missing,
    terminating or not ready). Returns the pod UIDs seen per member."""
    uids: dict[str, set[str]] = {}
    for _ in range(2400):
        pods = await member_pods(kube, ns, name)
        for p in pods:
            if p.metadata and p.metadata.name and p.metadata.uid:
                uids.setdefault(p.metadata.name, set()).add(p.metadata.uid)
        up = sum(1 for p in pods if _ready(p))
        assert replicas - up <= 1, f"{replicas - up} members down at once"
        if await done():
            return uids
        await asyncio.sleep(0.25)
    raise AssertionError("the rollout did not finish in time")


async def test_raising_the_quota_restarts_every_member_once_one_at_a_time(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "quota"
    await create_ready_cluster(kube, ns, name, {"replicas": 3})
    await patch_spec(kube, ns, name, {"etcd": {"quotaBackendBytes": QUOTA}})
    flag = f"--quota-backend-bytes={QUOTA}"

    async def rolled() -> bool:
        pods = await member_pods(kube, ns, name)
        body = await get_cluster(kube, ns, name)
        return (
            len(pods) == 3
            and all(flag in (p.spec.containers[0].args or []) for p in pods if p.spec)
            and (body.get("status") or {}).get("phase") == "Running"
        )

    uids = await _watch_down(kube, ns, name, 3, rolled)
    assert {n: len(u) for n, u in uids.items()} == {f"{name}-{i}": 2 for i in range(3)}
    await wait_ready(kube, ns, name, 3)


async def test_a_drain_during_an_upgrade_never_takes_a_second_member_down(
    kube: AsyncClient, namespace: str
) -> None:
    """Once the rollout has a member down, a drain asks to evict another member until it may
    (as `kubectl drain` retries): the disruption budget refuses it while the operator's member
    is down, and the operator waits while the drained one is."""
    ns, name = namespace, "drain"
    await create_ready_cluster(kube, ns, name, {"replicas": 3, "version": "3.6.15"})
    await patch_spec(kube, ns, name, {"version": "3.6.16"})
    victim = f"{name}-0"
    refused, evicted = 0, 0

    async def drain_and_check_done() -> bool:
        nonlocal refused, evicted
        pods = await member_pods(kube, ns, name)
        rolling = sum(1 for p in pods if _ready(p)) < 3
        if rolling and not refused:
            # The budget refuses once the disruption controller has seen the member down: a
            # moment after the pod's readiness, which is what kubectl drain would also hit.
            budget = await kube.get(PodDisruptionBudget, name, namespace=ns)
            rolling = budget.status is not None and budget.status.disruptionsAllowed == 0
        if not evicted and (rolling or refused):
            try:
                eviction = Pod.Eviction(metadata=ObjectMeta(name=victim, namespace=ns))
                await kube.create(eviction, name=victim, namespace=ns)
                evicted += 1
            except ApiError as e:
                if e.status.code == 429:
                    refused += 1
                elif e.status.code != 404:  # 404: between its old pod and the new one
                    raise
        body = await get_cluster(kube, ns, name)
        status = body.get("status") or {}
        members = status.get("members") or []
        return (
            status.get("currentVersion") == "3.6.16"
            and status.get("phase") == "Running"
            and len(members) == 3
            and all(m.get("version") == "3.6.16" and m.get("healthy") for m in members)
        )

    await _watch_down(kube, ns, name, 3, drain_and_check_done)
    assert refused >= 1 and evicted == 1, (refused, evicted)
    await wait_ready(kube, ns, name, 3)


async def test_empty_dir_members_are_replaced_by_an_upgrade_and_the_data_is_kept(
    kube: AsyncClient, namespace: str
) -> None:
    from etcd_operator.etcd import EtcdClient, EtcdConfig

    ns, name = namespace, "ephemeral"
    spec = {"replicas": 3, "version": "3.6.15", "storage": {"emptyDir": True}}
    await create_ready_cluster(kube, ns, name, spec)
    endpoints = member_urls(ns, name, range(3))
    config = EtcdConfig(endpoints=endpoints, dial_timeout=2.0, request_timeout=5.0)
    async with EtcdClient(config) as etcd:
        before = {m.name: m.id for m in (await etcd.member_list()).members}
        await etcd.put("kept", "yes")
    await patch_spec(kube, ns, name, {"version": "3.6.16"})

    async def upgraded() -> bool:
        body = await get_cluster(kube, ns, name)
        status = body.get("status") or {}
        members = status.get("members") or []
        return (
            status.get("phase") == "Running"
            and len(members) == 3
            and all(m.get("version") == "3.6.16" and m.get("healthy") for m in members)
            and not any(m.get("isLearner") for m in members)
        )

    await _watch_down(kube, ns, name, 3, upgraded)
    async with EtcdClient(config) as etcd:
        after = {m.name: m.id for m in (await etcd.member_list()).members}
        got = await etcd.get("kept")
    assert set(after) == set(before) and all(after[n] != before[n] for n in before)
    assert got is not None and got.value == b"yes"


async def _claim_size(kube: AsyncClient, ns: str, name: str) -> str:
    pvc = await kube.get(PersistentVolumeClaim, name, namespace=ns)
    assert pvc.spec is not None and pvc.spec.resources is not None
    return (pvc.spec.resources.requests or {}).get("storage", "")


async def test_claims_grow_in_place_when_the_class_allows_it(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "grow"
    await create_ready_cluster(kube, ns, name, {"replicas": 1})
    await patch_spec(kube, ns, name, {"storage": {"size": "2Gi"}})

    async def grown() -> bool:
        return await _claim_size(kube, ns, f"{name}-0") == "2Gi"

    await eventually(grown, 60, "the claim to ask for 2Gi")


async def test_claims_that_cannot_grow_are_reported(kube: AsyncClient, namespace: str) -> None:
    ns, name = namespace, "fixed"
    storage_class = f"fixed-{uuid.uuid4().hex[:6]}"
    await kube.create(
        StorageClass(
            metadata=ObjectMeta(name=storage_class),
            provisioner="kubernetes.io/host-path",
            reclaimPolicy="Delete",
            volumeBindingMode="Immediate",
            allowVolumeExpansion=False,
        )
    )
    try:
        spec = {"replicas": 1, "storage": {"storageClassName": storage_class}}
        await create_ready_cluster(kube, ns, name, spec)
        await patch_spec(kube, ns, name, {"storage": {"size": "2Gi"}})

        async def reported() -> bool:
            degraded = condition(await get_cluster(kube, ns, name), "Degraded")
            return bool(
                degraded
                and degraded.get("status") == "True"
                and degraded.get("reason") == "VolumeExpansionUnsupported"
            )

        await eventually(reported, 60, "Degraded VolumeExpansionUnsupported")
        assert await _claim_size(kube, ns, f"{name}-0") == "1Gi"
    finally:
        with contextlib.suppress(ApiError):
            await kube.delete(StorageClass, storage_class)
