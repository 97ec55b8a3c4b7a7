"""Members heal: a deleted pod, a killed container and a wiped volume all come back."""

from __future__ import annotations

import asyncio

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod

from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    wait_ready,
)
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e


async def _member_ids(namespace: str) -> dict[str, int]:
    async with etcd_client(member_urls(namespace, "heal", range(3))) as etcd:
        return {m.name: m.id for m in (await etcd.member_list()).members}


async def _put(namespace: str, key: str) -> None:
    async with etcd_client(member_urls(namespace, "heal", range(3))) as etcd:
        await etcd.put(key, key)


async def _get(namespace: str, key: str) -> bytes | None:
    async with etcd_client(member_urls(namespace, "heal", range(3))) as etcd:
        got = await etcd.get(key)
        return got.value if got else None


@pytest.fixture
async def healthy(kube: AsyncClient, namespace: str) -> str:
    await create_ready_cluster(kube, namespace, "heal", {"replicas": 3})
    await _put(namespace, "before")
    return namespace


async def test_deleted_pod_is_recreated_and_rejoins_as_the_same_member(
    kube: AsyncClient, healthy: str
) -> None:
    ns = healthy
    ids = await _member_ids(ns)
    old = await kube.get(Pod, "heal-1", namespace=ns)
    await kube.delete(Pod, "heal-1", namespace=ns)
    await eventually(lambda: _pod_gone_or_new(kube, ns, "heal-1"), 90, "heal-1 to be replaced")
    # Status may still say Ready from before the deletion: wait for the new pod itself.
    await eventually(
        lambda: _ready_again(kube, ns, "heal-1", old.metadata.uid if old.metadata else None),
        120,
        "the new heal-1 pod to be ready",
    )
    await wait_ready(kube, ns, "heal", 3)
    assert await _member_ids(ns) == ids, "the member kept its ID: it rejoined with its data"
    assert await _get(ns, "before") == b"before"


async def test_killed_container_restarts_in_place(
    kube: AsyncClient, healthy: str, localcluster: LocalCluster
) -> None:
    ns = healthy
    ids = await _member_ids(ns)
    faults.kill_container(localcluster.state, ns, "heal-2", "etcd")

    async def restarted() -> bool:
        pod = await kube.get(Pod, "heal-2", namespace=ns)
        statuses = (pod.status.containerStatuses if pod.status else None) or []
        return any(s.name == "etcd" and s.restartCount >= 1 and s.ready for s in statuses)

    await eventually(restarted, 120, "heal-2's etcd container to restart")
    await wait_ready(kube, ns, "heal", 3)
    assert await _member_ids(ns) == ids
    assert await _get(ns, "before") == b"before"


async def test_member_with_wiped_volume_is_replaced_by_a_new_member(
    kube: AsyncClient, healthy: str, localcluster: LocalCluster
) -> None:
    ns = healthy
    ids = await _member_ids(ns)
    faults.wipe_volume(localcluster.state, ns, "heal-0")
    await kube.delete(Pod, "heal-0", namespace=ns)

    async def replaced() -> bool:
        now = await _member_ids(ns)
        return "heal-0" in now and now["heal-0"] != ids["heal-0"] and len(now) == 3

    await eventually(replaced, 180, "heal-0 to be replaced by a new member")
    await wait_ready(kube, ns, "heal", 3)
    assert await _get(ns, "before") == b"before"
    body = await get_cluster(kube, ns, "heal")
    assert body["status"]["replicas"] == 3


async def _pod_gone_or_new(kube: AsyncClient, namespace: str, name: str) -> bool:
    pods = {p.metadata.name: p for p in await member_pods(kube, namespace, "heal") if p.metadata}
    pod = pods.get(name)
    await asyncio.sleep(0)
    return pod is not None and pod.metadata is not None and not pod.metadata.deletionTimestamp


async def _ready_again(kube: AsyncClient, namespace: str, name: str, old_uid: str | None) -> bool:
    pod = await kube.get(Pod, name, namespace=namespace)
    conditions = (pod.status.conditions if pod.status else None) or []
    return (
        pod.metadata is not None
        and pod.metadata.uid != old_uid
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )
