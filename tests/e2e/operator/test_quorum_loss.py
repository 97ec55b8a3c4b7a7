"""Quorum lost for good: two of three members' pods go and their volumes come back empty.

One cluster tells the whole story: with `Manual` (the default) nothing is destroyed and the
condition says what to do; then `spec.recovery.quorumLoss: FromSurvivor` on the same cluster
rebuilds it from the survivor, and every key acknowledged before the loss reads back."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from harness.clusters import (
    condition,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.waits import wait_events
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

MEMBER_ID = "etcd.operator.io/member-id"


async def _claim_uids(kube: AsyncClient, namespace: str) -> dict[str, str]:
    return {
        c.metadata.name: str(c.metadata.uid)
        async for c in kube.list(PersistentVolumeClaim, namespace=namespace)
        if c.metadata and c.metadata.name
    }


async def _pod_uid(kube: AsyncClient, namespace: str, name: str) -> str:
    pod = await kube.get(Pod, name, namespace=namespace)
    return str(pod.metadata.uid if pod.metadata else "")


async def test_quorum_loss_manual_then_from_survivor(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    ns, name = namespace, "ql"
    await create_ready_cluster(kube, ns, name, {"replicas": 3})
    written = {f"k{i:03}": f"v{i}" for i in range(100)}
    async with etcd_client(member_urls(ns, name, range(3))) as etcd:
        for key, value in written.items():
            await etcd.put(key, value)  # acknowledged: committed by a quorum
        before = {m.name: m.id for m in (await etcd.member_list()).members}

    async def recorded() -> bool:
        claims = {
            c.metadata.name: (c.metadata.annotations or {})
            async for c in kube.list(PersistentVolumeClaim, namespace=ns)
            if c.metadata and c.metadata.name
        }
        return all(claims.get(n, {}).get(MEMBER_ID) == f"{before[n]:x}" for n in before)

    await eventually(recorded, 30, "every claim to record its member's log")
    # Two members' pods go and their disks come back empty; ql-0 keeps running alone.
    await patch_spec(kube, ns, name, {"paused": True})
    for lost in ("ql-1", "ql-2"):
        await kube.delete(Pod, lost, namespace=ns)

    async def lost_gone() -> bool:
        names = {p.metadata.name for p in await member_pods(kube, ns, name) if p.metadata}
        return not names & {"ql-1", "ql-2"}

    await eventually(lost_gone, 120, "the two pods to stop")
    for lost in ("ql-1", "ql-2"):
        faults.wipe_volume(localcluster.state, ns, lost)
    claims_before = await _claim_uids(kube, ns)
    survivor_uid = await _pod_uid(kube, ns, "ql-0")
    await patch_spec(kube, ns, name, {"paused": False})

    # Manual: a condition that names the lost and the surviving members and what to do.
    reported: dict[str, Any] = {}

    async def says_what_to_do() -> bool:
        degraded = condition(await get_cluster(kube, ns, name), "Degraded") or {}
        reported.update(degraded)
        return degraded.get("reason") == "QuorumLost" and "for good" in degraded.get("message", "")

    await eventually(says_what_to_do, 180, "Degraded QuorumLost with instructions")
    message = reported["message"]
    assert "ql-1: its volume no longer holds its log" in message, message
    assert "ql-2: its volume no longer holds its log" in message, message
    assert "FromSurvivor to rebuild from ql-0" in message, message
    assert "EtcdRestore" in message, message
    # Nothing destroyed: every claim is the same object, the survivor's pod untouched.
    assert await _claim_uids(kube, ns) == claims_before
    assert await _pod_uid(kube, ns, "ql-0") == survivor_uid

    # FromSurvivor: rebuilt from ql-0 with its data, the others back as new members.
    await patch_spec(kube, ns, name, {"recovery": {"quorumLoss": "FromSurvivor"}})
    body = await wait_ready(kube, ns, name, 3, timeout=300)
    record = (body.get("status") or {}).get("quorumLossRecovery") or {}
    assert record.get("phase") == "Recovered" and record.get("member") == "ql-0", record
    assert record.get("memberID") == f"{before['ql-0']:x}", record
    async with etcd_client(member_urls(ns, name, range(3))) as etcd:
        after = {m.name: m.id for m in (await etcd.member_list()).members}
        assert after["ql-0"] == before["ql-0"], "the survivor keeps its ID"
        assert after["ql-1"] != before["ql-1"] and after["ql-2"] != before["ql-2"]
        for key, value in written.items():
            got = await etcd.get(key)
            assert got is not None and got.value == value.encode(), f"{key} lost"
    # Events come from kopf's queue, possibly after the status that made the cluster ready.
    for reason, saying in (
        ("ForceNewCluster", ""),
        ("ForcedStartDone", "may be gone"),
        ("QuorumLost", ""),  # a Warning Event reported the loss
    ):
        await wait_events(
            kube,
            ns,
            lambda e, r=reason, m=saying: e.reason == r and m in (e.message or ""),
            f"a {reason} Event saying {saying!r}",
        )
    pods = await member_pods(kube, ns, name)
    flagged = [
        p.metadata.name
        for p in pods
        if p.metadata and (p.metadata.annotations or {}).get("etcd.operator.io/force-new-cluster")
    ]
    assert not flagged, f"pods still built with --force-new-cluster: {flagged}"
