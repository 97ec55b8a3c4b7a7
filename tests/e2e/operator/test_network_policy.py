"""The members' NetworkPolicy, enforced by localcluster's node: real connections from real
pods' network namespaces (dropped means the connection times out)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.codecs import from_dict
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod, Service
from lightkube.resources.networking_v1 import NetworkPolicy

from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    eventually,
    member_urls,
    patch_spec,
    scratch_namespace,
    wait_ready,
)
from localcluster.cluster import LocalCluster
from localcluster.testing.pods import connect_from

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
CLIENT, PEER, METRICS = 2379, 2380, 2381
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _sleeper(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "client"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                            "securityContext": RESTRICTED_CONTAINER}],
        },
    }  # fmt: skip


async def _start_sleeper(kube: AsyncClient, namespace: str, name: str) -> None:
    async def created() -> bool:
        await kube.create(from_dict(_sleeper(namespace, name)))  # until the default SA exists
        return True

    await eventually(created, 60, f"{namespace}/{name} created")
    await _ip(kube, namespace, name)


async def _ip(kube: AsyncClient, namespace: str, name: str) -> str:
    async def ip() -> str | None:
        status = (await kube.get(Pod, name, namespace=namespace)).status
        return status.podIP if status else None

    return await eventually(ip, 60, f"{namespace}/{name} has an address", interval=0.05)


class Net:
    """Connections from pods of the session's localcluster."""

    def __init__(self, localcluster: LocalCluster) -> None:
        self.state = localcluster.state

    async def outcome(
        self, namespace: str, pod: str, ip: str, port: int, *, read: bool = False
    ) -> str:
        return await asyncio.to_thread(
            connect_from, self.state, namespace, pod, ip, port, read=read
        )

    async def becomes(
        self,
        namespace: str,
        pod: str,
        ip: str,
        port: int,
        want: str,
        timeout: float = 30,
        *,
        read: bool = False,
    ) -> float:
        """Seconds until connecting gives `want` (the operator and the node need a moment)."""
        start = time.monotonic()

        async def check() -> bool:
            return await self.outcome(namespace, pod, ip, port, read=read) == want

        await eventually(check, timeout, f"{namespace}/{pod} -> {ip}:{port} {want}", 0.05)
        return time.monotonic() - start


async def _peers_admit_after(kube: AsyncClient, net: Net, namespace: str, new: str) -> float:
    """Seconds from the new member's address showing in the API until it reaches the peer
    port of every other member from its own network namespace."""

    async def address() -> str | None:
        try:
            status = (await kube.get(Pod, new, namespace=namespace)).status
        except ApiError:
            return None
        return status.podIP if status else None

    await eventually(address, 120, f"{new} has an address", interval=0.02)
    start = time.monotonic()
    peers = [await _ip(kube, namespace, f"np-{ordinal}") for ordinal in range(3)]
    # All three at once: tried one after another, each probe's own start-up (a process in the
    # pod's network namespace, slow on a loaded machine) would add up in the figure.
    await asyncio.gather(
        *(net.becomes(namespace, new, peer, PEER, "connected", timeout=30) for peer in peers)
    )
    took = time.monotonic() - start
    nodes = {
        p.metadata.name: p.spec.nodeName
        async for p in kube.list(Pod, namespace=namespace)
        if p.metadata and p.spec and p.metadata.name and p.metadata.name.startswith("np-")
    }
    print(f"\n{new} reached every peer {took:.2f}s after its address showed (nodes: {nodes})")
    return took


async def test_the_default_policy_admits_the_namespace_and_members_only_and_scaling_works(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    net = Net(localcluster)
    await create_ready_cluster(kube, namespace, "np", {"replicas": 3})
    policy = await kube.get(NetworkPolicy, "np", namespace=namespace)
    assert policy.spec is not None and policy.spec.policyTypes == ["Ingress"]
    async with scratch_namespace(kube, "np-away") as away:
        await _start_sleeper(kube, namespace, "app")
        await _start_sleeper(kube, away, "app")
        member = await _ip(kube, namespace, "np-0")

        # The member's node admits the new app pod once its address reaches it (a watch).
        await net.becomes(namespace, "app", member, CLIENT, "connected")
        await net.becomes(namespace, "app", member, METRICS, "connected")
        assert await net.outcome(namespace, "app", member, PEER) == "timeout", "not a member"
        assert await net.outcome(away, "app", member, CLIENT) == "timeout", "other namespace"
        assert await net.outcome(away, "app", member, PEER) == "timeout"
        # Through the client Service the same holds (etcd waits silently for a request; a
        # refused client is closed at once by localcluster's proxy).
        service = await kube.get(Service, "np-client", namespace=namespace)
        assert service.spec is not None and service.spec.clusterIP
        ip = service.spec.clusterIP
        # (the proxy learns the app pod's address at its next sync)
        await net.becomes(namespace, "app", ip, CLIENT, "silent", read=True)
        assert await net.outcome(away, "app", ip, CLIENT, read=True) == "closed"

        # Scaling under the policy: the new member reaches its peers as soon as it has an
        # address, joins as a learner, is promoted; then scaling in removes it again.
        await patch_spec(kube, namespace, "np", {"replicas": 4})
        assert await _peers_admit_after(kube, net, namespace, "np-3") < 2.0
        await wait_ready(kube, namespace, "np", 4, timeout=240)
        async with etcd_client(member_urls(namespace, "np", range(4))) as etcd:
            await etcd.put("under-policy", "yes")
            members = await etcd.member_list()
            assert len(members.voters) == 4 and not members.learners
        await patch_spec(kube, namespace, "np", {"replicas": 3})
        await wait_ready(kube, namespace, "np", 3, timeout=240)
        async with etcd_client(member_urls(namespace, "np", range(3))) as etcd:
            got = await etcd.get("under-policy")
            assert got is not None and got.value == b"yes"

        # A deleted member comes back with a new address, which its peers must admit.
        old = await kube.get(Pod, "np-1", namespace=namespace)
        await kube.delete(Pod, "np-1", namespace=namespace)

        async def replaced() -> bool:
            pod = await kube.get(Pod, "np-1", namespace=namespace)
            conditions = (pod.status.conditions if pod.status else None) or []
            # Ready: it reaches its peers again (status may still say Ready from before).
            return bool(
                pod.metadata
                and old.metadata
                and pod.metadata.uid != old.metadata.uid
                and any(c.type == "Ready" and c.status == "True" for c in conditions)
            )

        await eventually(replaced, 120, "np-1 replaced and ready")
        await wait_ready(kube, namespace, "np", 3, timeout=240)

        # clientsFrom with a namespaceSelector opens the client port to that namespace (and
        # replaces the default: the cluster's own namespace is no longer let in).
        selector = {"matchLabels": {"kubernetes.io/metadata.name": away}}
        await patch_spec(
            kube,
            namespace,
            "np",
            {"networkPolicy": {"clientsFrom": [{"namespaceSelector": selector}]}},
        )
        await net.becomes(away, "app", member, CLIENT, "connected")
        assert await net.outcome(namespace, "app", member, CLIENT) == "timeout"
        assert await net.outcome(away, "app", member, PEER) == "timeout"

        # Disabled: the operator deletes its policy and the members are open again.
        await patch_spec(kube, namespace, "np", {"networkPolicy": {"enabled": False}})

        async def deleted() -> bool:
            try:
                await kube.get(NetworkPolicy, "np", namespace=namespace)
            except ApiError as e:
                return e.status.code == 404
            return False

        await eventually(deleted, 60, "the policy deleted")
        await net.becomes(away, "app", member, PEER, "connected")
