"""The operator runs as its ServiceAccount with exactly the RBAC the install gives it: the
cluster-wide one of deploy/, or a namespaced one that reaches only the namespaces it
watches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable
from pathlib import Path

import pytest
from lightkube import ALL_NS, AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import SelfSubjectReviewStatus
from lightkube.resources.authentication_v1 import SelfSubjectReview
from lightkube.resources.core_v1 import Node, Pod, Secret

from etcd_operator.kube import EtcdClusterResource
from harness.clusters import create_cluster, eventually, get_cluster, scratch_namespace, wait_ready
from harness.identity import Identity
from harness.operator_process import OperatorProcess
from harness.waits import wait_events
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
FORBIDDEN = 403
# What kopf logs when the RBAC lacks something it would use (CRD or Namespace watches, ...).
# Every 403 from the apiserver says "forbidden" (its reason and message); a bare "403" also
# matched numbers in the log (an object address at DEBUG level).
RBAC_COMPLAINTS = ("forbidden", "not enough permissions")


async def _username(client: AsyncClient) -> str | None:
    review = await client.create(SelfSubjectReview())
    status = review.status or SelfSubjectReviewStatus()
    return status.userInfo.username if status.userInfo else None


async def _forbidden(call: Awaitable[object]) -> bool:
    try:
        await call
    except ApiError as e:
        return e.status.code == FORBIDDEN
    return False


async def _listed(items: AsyncIterable[object]) -> list[object]:
    return [item async for item in items]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _client(who: Identity) -> AsyncClient:
    return AsyncClient(KubeConfig.from_file(who.kubeconfig))


async def test_the_operator_acts_as_its_service_account_within_the_deploy_rbac(
    operator: OperatorProcess,
) -> None:
    who = operator.identity
    assert who is not None and operator.pid is not None
    # The running process uses the token's kubeconfig, not localcluster's admin one.
    assert _environ(operator.pid)["KUBECONFIG"] == str(who.kubeconfig)
    client = _client(who)
    try:
        assert await _username(client) == "system:serviceaccount:etcd-operator-system:etcd-operator"
        # Inside deploy/'s ClusterRole: EtcdClusters and Pods everywhere.
        assert not await _forbidden(_listed(client.list(EtcdClusterResource, namespace=ALL_NS)))
        assert not await _forbidden(_listed(client.list(Pod, namespace="kube-system")))
        # Outside it: Nodes, and listing Secrets (TLS and auth read theirs by name).
        assert await _forbidden(_listed(client.list(Node)))
        assert await _forbidden(_listed(client.list(Secret, namespace="kube-system")))
    finally:
        await client.close()


async def test_a_namespaced_operator_manages_its_namespace_and_leaves_others_alone(
    kube: AsyncClient, localcluster: LocalCluster, operator: OperatorProcess
) -> None:
    operator.stop()  # the cluster-wide operator would act on both namespaces
    try:
        async with (
            scratch_namespace(kube, "rbac-a", RESTRICTED) as watched,
            scratch_namespace(kube, "rbac-b", RESTRICTED) as other,
        ):
            scoped = OperatorProcess(localcluster.state, "scoped-operator", namespaces=(watched,))
            # The log is appended to across runs: read only what this operator writes.
            offset = scoped.log_path.stat().st_size if scoped.log_path.exists() else 0
            scoped.start()
            try:
                await _check_scoped(kube, scoped, watched, other)
            finally:
                scoped.stop()
            with scoped.log_path.open() as f:
                f.seek(offset)
                log = f.read()
            assert "Starting Kopf" in log
            complaints = [c for c in RBAC_COMPLAINTS if c in log.lower()]
            assert not complaints, f"{scoped.log_path} shows missing RBAC: {complaints}"
    finally:
        operator.start()


async def _check_scoped(
    kube: AsyncClient, scoped: OperatorProcess, watched: str, other: str
) -> None:
    who = scoped.identity
    assert who is not None
    client = _client(who)
    try:
        assert await _username(client) == who.account.username
        assert who.account.name != "etcd-operator"  # not the cluster-wide account
        # Only a Role in the watched namespace: nothing in the other one, nothing cluster-wide.
        assert [p async for p in client.list(Pod, namespace=watched)] == []
        assert await _forbidden(_listed(client.list(Pod, namespace=other)))
        assert await _forbidden(_listed(client.list(EtcdClusterResource, namespace=ALL_NS)))
    finally:
        await client.close()

    await create_cluster(kube, other, "left", {"replicas": 1})
    await create_cluster(kube, watched, "kept", {"replicas": 1})
    await wait_ready(kube, watched, "kept", 1)
    # The operator posts Events in the watched namespace (kopf.event, by its token).
    await wait_events(
        kube,
        watched,
        lambda e: e.involvedObject.kind == "EtcdCluster",
        "an Event posted for the managed cluster",
    )
    await asyncio.sleep(5)  # a round of the operator's loop would have acted by now
    untouched = await get_cluster(kube, other, "left")
    assert not untouched.get("status")
    assert not untouched["metadata"].get("finalizers")
    assert [p async for p in kube.list(Pod, namespace=other)] == []
    # Deleting the managed cluster: the namespaced operator releases its finalizer.
    await kube.delete(EtcdClusterResource, "kept", namespace=watched)

    async def gone() -> bool:
        return not [c async for c in kube.list(EtcdClusterResource, namespace=watched)]

    await eventually(gone, 60, f"{watched}/kept deleted by the namespaced operator")
