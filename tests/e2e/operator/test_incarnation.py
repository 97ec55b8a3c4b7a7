"""A cluster deleted and created again under the same name is another cluster (another UID):
spec.recovery FromLatestBackup never restores a backup of the earlier one. That backup is the
only Succeeded one named for the cluster, so a recovery blind to whose cluster a backup was
taken of would restore the old keys into the new cluster; the operator instead says no backup
of this cluster exists, names the one it skipped, and changes nothing. Taken deliberately
(spec.rollback, allowOtherCluster) it is restored; and a backup of the new cluster itself is
what the next recovery restores, without the spec.rollback already done being done again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, PersistentVolumeClaim, Pod

from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource
from harness.clusters import (
    condition,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.operations import cluster_absent, create_claim, final
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

NAME = "inc"
KEYS = 20


async def _put(namespace: str, prefix: str) -> None:
    async with etcd_client(member_urls(namespace, NAME, [0])) as etcd:
        await asyncio.gather(*(etcd.put(f"/{prefix}/{i:02d}", prefix) for i in range(KEYS)))


async def _pods(kube: AsyncClient, namespace: str) -> list[str]:
    """Names of the pods in the namespace (the backup Job's pod among them)."""
    return [p.metadata.name or "" async for p in kube.list(Pod, namespace=namespace) if p.metadata]


async def _gone(kube: AsyncClient, namespace: str) -> bool:
    """The first cluster, its member pod and (whenDeleted: Delete) its claim are gone."""
    if not await cluster_absent(kube, namespace, NAME):
        return False
    if f"{NAME}-0" in await _pods(kube, namespace):
        return False
    claims = [c async for c in kube.list(PersistentVolumeClaim, namespace=namespace)]
    return all(c.metadata is None or c.metadata.name != f"{NAME}-0" for c in claims)


async def _count(namespace: str, prefix: str) -> int:
    """How many of the keys written under `prefix` the cluster serves."""
    async with etcd_client(member_urls(namespace, NAME, [0])) as etcd:
        found = await asyncio.gather(*(etcd.get(f"/{prefix}/{i:02d}") for i in range(KEYS)))
    return sum(1 for kv in found if kv and kv.value == prefix.encode())


async def _backup(kube: AsyncClient, namespace: str, name: str) -> dict[str, Any]:
    await kube.create(
        EtcdBackupResource(
            metadata=ObjectMeta(name=name, namespace=namespace),
            spec={"clusterName": NAME, "destination": {"volume": {"claimName": "backups"}}},
        )
    )
    body = await final(kube, EtcdBackupResource, namespace, name)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    return body


async def _lose_the_only_member(kube: AsyncClient, ns: str, localcluster: LocalCluster) -> None:
    """Its pod stopped and its disk wiped: member-init refuses it, no quorum can ever form."""
    pod = await kube.get(Pod, f"{NAME}-0", namespace=ns)
    assert pod.spec is not None
    # Its own claim (after a rollback `inc-0-1`; a restored pod also mounts the snapshot's).
    claims = [
        v.persistentVolumeClaim.claimName
        for v in pod.spec.volumes or []
        if v.persistentVolumeClaim and v.persistentVolumeClaim.claimName.startswith(f"{NAME}-0")
    ]
    assert len(claims) == 1, claims
    await patch_spec(kube, ns, NAME, {"paused": True})
    await kube.delete(Pod, f"{NAME}-0", namespace=ns)

    async def stopped() -> bool:
        return f"{NAME}-0" not in await _pods(kube, ns)

    await eventually(stopped, 60, "the member pod to stop")
    faults.wipe_volume(localcluster.state, ns, claims[0])
    await patch_spec(kube, ns, NAME, {"paused": False})


async def _rolled_back(kube: AsyncClient, ns: str, epoch: int) -> dict[str, Any]:
    """status.rollback once the rollback of `epoch` completed."""

    async def completed() -> dict[str, Any] | None:
        record = (await get_cluster(kube, ns, NAME)).get("status", {}).get("rollback") or {}
        return (
            record if record.get("epoch") == epoch and record.get("phase") == "Completed" else None
        )

    return await eventually(completed, 120, f"rollback {epoch} to complete")


async def test_a_recreated_cluster_never_recovers_from_an_earlier_clusters_backup(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    ns = namespace
    await create_claim(kube, ns)
    spec: dict[str, Any] = {"replicas": 1, "pvcRetentionPolicy": {"whenDeleted": "Delete"}}
    first = await create_ready_cluster(kube, ns, NAME, spec)
    await _put(ns, "old")
    old = await _backup(kube, ns, "old-snap")
    assert old["status"]["clusterUID"] == first["metadata"]["uid"]

    # Deleted and created again under the same name, now recovering from backups.
    await kube.delete(EtcdClusterResource, NAME, namespace=ns)
    await eventually(lambda: _gone(kube, ns), 120, "the first cluster and its claim to go")
    spec = {"replicas": 1, "recovery": {"quorumLoss": "FromLatestBackup"}}
    second = await create_ready_cluster(kube, ns, NAME, spec)
    uid = second["metadata"]["uid"]
    assert uid != first["metadata"]["uid"]
    await _put(ns, "new")
    await _lose_the_only_member(kube, ns, localcluster)

    async def reported() -> str | None:
        body = await get_cluster(kube, ns, NAME)
        record = (body.get("status") or {}).get("rollback")
        assert record is None, f"a rollback started from an earlier cluster's backup: {record}"
        degraded = condition(body, "Degraded") or {}
        message = str(degraded.get("message", ""))
        if degraded.get("reason") == "QuorumLost" and "FromLatestBackup" in message:
            return message
        return None

    # First "no member answers" while the pod starts, then member-init's verdict.
    message = await eventually(reported, 120, "the quorum lost for good to be reported")
    assert message.startswith("quorum lost for good"), message
    assert "no Succeeded EtcdBackup of this cluster" in message, message
    assert "EtcdBackup old-snap" in message and first["metadata"]["uid"] in message, message

    async def warned() -> list[str] | None:
        found = [
            e.message or ""
            async for e in kube.list(Event, namespace=ns)
            if e.type == "Warning"
            and e.reason == "QuorumLost"
            and e.involvedObject.kind == "EtcdCluster"
            and e.involvedObject.uid == uid
            and "EtcdBackup old-snap" in (e.message or "")
        ]
        return found or None

    await eventually(warned, 30, "a Warning Event naming the skipped backup")

    # Nothing was restored: no snapshot verified for it, no rollback, the claim kept.
    pods = [p for p in await _pods(kube, ns) if p.startswith(f"{NAME}-")]
    assert pods == [f"{NAME}-0"], pods
    body = await get_cluster(kube, ns, NAME)
    assert "rollback" not in body["status"]
    claims = [
        c.metadata.name or ""
        async for c in kube.list(PersistentVolumeClaim, namespace=ns)
        if c.metadata
    ]
    assert sorted(claims) == ["backups", f"{NAME}-0"]

    # Taken deliberately, as the message says: the old data comes back, under the new UID.
    confirm = {"backup": "old-snap", "confirm": f"{NAME}/old-snap", "allowOtherCluster": True}
    await patch_spec(kube, ns, NAME, {"rollback": confirm})
    record = await _rolled_back(kube, ns, 1)
    assert record["backup"] == "old-snap" and record.get("cause") != "QuorumLoss", record
    await wait_ready(kube, ns, NAME, 1)
    assert (await _count(ns, "old"), await _count(ns, "new")) == (KEYS, 0)

    # A backup of this cluster is what the next loss restores (its UID recorded as this one's).
    await _put(ns, "newer")
    mine = await _backup(kube, ns, "new-snap")
    assert mine["status"]["clusterUID"] == uid
    await _put(ns, "lost")
    await _lose_the_only_member(kube, ns, localcluster)
    record = await _rolled_back(kube, ns, 2)
    assert record["backup"] == "new-snap" and record["cause"] == "QuorumLoss", record
    await wait_ready(kube, ns, NAME, 1)
    counts = {p: await _count(ns, p) for p in ("old", "new", "newer", "lost")}
    assert (counts["newer"], counts["lost"]) == (KEYS, 0), f"{counts} {record}"
    # spec.rollback still names old-snap, done before the recovery: not done again.
    body = await get_cluster(kube, ns, NAME)
    assert body["status"]["rollback"]["epoch"] == 2, body["status"]["rollback"]
