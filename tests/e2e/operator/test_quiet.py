"""The operator writes only what changes: an idle cluster in sync costs no write, a paused
cluster gets none at all, and what goes missing is put back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget

from etcd_operator.api import GROUP
from etcd_operator.kube import EtcdClusterResource
from harness.clusters import create_ready_cluster, eventually, member_pods, patch_spec
from harness.waits import in_sync, wait_events

pytestmark = pytest.mark.e2e

DIFF_BASE = f"{GROUP}/last-handled-configuration"
# Longer than the in-sync interval (15 s): at least one full idle round happens inside.
IDLE = 20.0


async def _versions(kube: AsyncClient, ns: str, name: str) -> dict[str, str | None]:
    """resourceVersion of the resource and every object the operator applies for it."""
    found: dict[str, str | None] = {}
    for kind, obj_name in (
        (EtcdClusterResource, name),
        (Service, name),
        (Service, f"{name}-client"),
        (PodDisruptionBudget, name),
        (NetworkPolicy, name),
    ):
        obj = await kube.get(kind, obj_name, namespace=ns)
        found[f"{kind.__name__}/{obj_name}"] = (
            obj.metadata.resourceVersion if obj.metadata else None
        )
    return found


async def _settled(kube: AsyncClient, ns: str, name: str) -> dict[str, str | None]:
    """The versions once the cluster is in sync and nothing has changed for a few seconds."""
    await eventually(lambda: in_sync(kube, ns, name), 60, f"{ns}/{name} in sync")
    before = await _versions(kube, ns, name)
    while True:
        await asyncio.sleep(4)
        now = await _versions(kube, ns, name)
        if now == before:
            return now
        before = now


async def test_an_idle_cluster_in_sync_costs_no_write(kube: AsyncClient, namespace: str) -> None:
    await create_ready_cluster(kube, namespace, "idle", {"replicas": 1})
    before = await asyncio.wait_for(_settled(kube, namespace, "idle"), 60)
    await asyncio.sleep(IDLE)
    assert await _versions(kube, namespace, "idle") == before


async def test_a_service_deleted_by_hand_is_put_back(kube: AsyncClient, namespace: str) -> None:
    await create_ready_cluster(kube, namespace, "svc", {"replicas": 1})
    old = await kube.get(Service, "svc-client", namespace=namespace)
    await kube.delete(Service, "svc-client", namespace=namespace)

    async def recreated() -> bool:
        new = await kube.get(Service, "svc-client", namespace=namespace)
        return bool(new.metadata and old.metadata and new.metadata.uid != old.metadata.uid)

    await eventually(recreated, 40, "svc-client recreated")


async def test_a_paused_cluster_gets_no_write_until_resumed(
    kube: AsyncClient, namespace: str
) -> None:
    await create_ready_cluster(kube, namespace, "pause", {"replicas": 1})
    # Nothing left to record from before the pause (a later status write would count).
    await eventually(lambda: in_sync(kube, namespace, "pause"), 60, "pause in sync")
    await patch_spec(kube, namespace, "pause", {"paused": True})
    # The round that sees the pause posts one Event and writes nothing; from then on no round
    # may put back what is deleted.
    await wait_events(kube, namespace, lambda e: e.reason == "Paused", "the Paused Event")
    await kube.delete(Service, "pause-client", namespace=namespace)
    await patch_spec(kube, namespace, "pause", {"replicas": 3})
    # kopf records each spec change it saw in an annotation (its diff base), paused or not:
    # one write per change by the user, not one per round; let it land first.
    resource = await eventually(
        lambda: _diff_base_has(kube, namespace, "pause", replicas=3),
        30,
        "kopf's diff base to record replicas 3",
    )
    await asyncio.sleep(IDLE)
    after = await kube.get(EtcdClusterResource, "pause", namespace=namespace)
    assert resource.metadata and after.metadata
    assert after.metadata.resourceVersion == resource.metadata.resourceVersion, "status written"
    assert [
        s
        async for s in kube.list(Service, namespace=namespace)
        if s.metadata and s.metadata.name == "pause-client"
    ] == [], "service applied"
    assert len(await member_pods(kube, namespace, "pause")) == 1, "scaled while paused"

    await patch_spec(kube, namespace, "pause", {"paused": False})

    async def resumed() -> bool:
        await kube.get(Service, "pause-client", namespace=namespace)
        return len(await member_pods(kube, namespace, "pause")) > 1

    await eventually(resumed, 60, "the service back and the scale-out started")


async def _diff_base_has(kube: AsyncClient, ns: str, name: str, *, replicas: int) -> Any:
    """The resource once kopf's diff base (the last spec it handled) says `replicas`."""
    got = await kube.get(EtcdClusterResource, name, namespace=ns)
    annotations = (got.metadata.annotations if got.metadata else None) or {}
    recorded = json.loads(annotations.get(DIFF_BASE, "{}"))
    return got if (recorded.get("spec") or {}).get("replicas") == replicas else None
