"""An EtcdCluster bootstraps into a working etcd cluster, and goes away cleanly."""

from __future__ import annotations

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import PersistentVolumeClaim, Service

from etcd_operator.kube import EtcdClusterResource
from harness.clusters import (
    condition,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
)
from harness.waits import settled

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("replicas", [1, 3, 5])
async def test_bootstrap_forms_a_healthy_cluster_of_the_requested_size(
    kube: AsyncClient, namespace: str, replicas: int
) -> None:
    body = await create_ready_cluster(kube, namespace, "boot", {"replicas": replicas})

    status = body["status"]
    assert status["leader"] in {m["name"] for m in status["members"]}
    assert status["clusterID"]
    assert status["currentVersion"] == body["spec"]["version"]
    assert condition(body, "Degraded")["status"] == "False"  # type: ignore[index]
    pods = await member_pods(kube, namespace, "boot")
    assert sorted(p.metadata.name for p in pods if p.metadata) == [
        f"boot-{i}" for i in range(replicas)
    ]
    async with etcd_client(member_urls(namespace, "boot", range(replicas))) as etcd:
        listed = await etcd.member_list()
        assert len(listed.voters) == replicas and not listed.learners
        await etcd.put("greeting", "hello")
        assert (got := await etcd.get("greeting")) is not None and got.value == b"hello"


async def test_clients_reach_the_cluster_through_the_client_service(
    kube: AsyncClient, namespace: str
) -> None:
    body = await create_ready_cluster(kube, namespace, "svc", {"replicas": 3})
    endpoint = body["status"]["clientEndpoint"]
    assert endpoint == f"http://svc-client.{namespace}.svc:2379"
    peer = await kube.get(Service, "svc", namespace=namespace)
    assert peer.spec is not None and peer.spec.clusterIP == "None"
    assert peer.spec.publishNotReadyAddresses

    async def via_service() -> bytes | None:
        async with etcd_client((endpoint,)) as etcd:
            await etcd.put("via-service", "yes")
            got = await etcd.get("via-service")
            return got.value if got else None

    # Ready pods reach the Service's EndpointSlice, then localcluster's proxy, a moment later.
    await settled(via_service, lambda value: value == b"yes", 30, "a put and get via the Service")


async def test_deleting_the_cluster_removes_pods_and_keeps_claims_by_default(
    kube: AsyncClient, namespace: str
) -> None:
    await create_ready_cluster(kube, namespace, "gone", {"replicas": 1})
    await kube.delete(EtcdClusterResource, "gone", namespace=namespace)

    async def deleted() -> bool:
        try:
            await get_cluster(kube, namespace, "gone")
        except ApiError as e:
            return e.status.code == 404
        return False

    await eventually(deleted, 60, "the EtcdCluster to be finalized")
    await eventually(lambda: _no_pods(kube, namespace), 60, "member pods to be garbage-collected")
    claims = [c async for c in kube.list(PersistentVolumeClaim, namespace=namespace)]
    assert [c.metadata.name for c in claims if c.metadata] == ["gone-0"]


async def _no_pods(kube: AsyncClient, namespace: str) -> bool:
    return not await member_pods(kube, namespace, "gone")
