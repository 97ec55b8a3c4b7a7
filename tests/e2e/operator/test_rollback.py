"""In-place rollback to an EtcdBackup: keys A, a backup, keys B; a confirmation naming another
cluster is refused and changes nothing; the confirmed rollback brings the cluster back under the
same name, and its client Service serves A and not B. The old claims are kept, retired."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.core_v1 import PersistentVolumeClaimSpec, VolumeResourceRequirements
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod, Service

from etcd_operator.kube import EtcdBackupResource
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
from harness.waits import settled
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

NAME = "roll"
REPLICAS = 3
KEYS = 200


async def _put_all(endpoints: tuple[str, ...], prefix: str) -> int:
    async with etcd_client(endpoints) as etcd:
        revisions = await asyncio.gather(
            *(etcd.put(f"/{prefix}/{i:04d}", f"{prefix}-{i}") for i in range(KEYS))
        )
        return max(revisions)


async def _member_pod_uids(kube: AsyncClient, namespace: str, name: str) -> set[str]:
    """UIDs of the member pods (the backup's Job pod carries the cluster's labels too)."""
    names = {f"{name}-{i}" for i in range(REPLICAS)}
    return {
        p.metadata.uid or ""
        for p in await member_pods(kube, namespace, name)
        if p.metadata and p.metadata.name in names
    }


async def _count(endpoints: tuple[str, ...], prefix: str) -> int:
    """How many of the keys written under `prefix` are there, each with its value."""
    async with etcd_client(endpoints) as etcd:
        found = await asyncio.gather(*(etcd.get(f"/{prefix}/{i:04d}") for i in range(KEYS)))
    return sum(1 for i, kv in enumerate(found) if kv and kv.value == f"{prefix}-{i}".encode())


async def _backup_succeeded(kube: AsyncClient, namespace: str, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        got = await kube.get(EtcdBackupResource, name, namespace=namespace)
        body: dict[str, Any] = got.to_dict()  # type: ignore[no-untyped-call]
        phase = (body.get("status") or {}).get("phase")
        assert phase != "Failed", body.get("status")
        return body if phase == "Succeeded" else None

    return await eventually(probe, 180, f"backup {name} succeeded")


async def test_a_cluster_rolled_back_in_place_serves_the_backup_under_the_same_service(
    kube: AsyncClient, namespace: str
) -> None:
    await kube.create(
        PersistentVolumeClaim(
            metadata=ObjectMeta(name="backups", namespace=namespace),
            spec=PersistentVolumeClaimSpec(
                accessModes=["ReadWriteOnce"],
                resources=VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        )
    )
    body = await create_ready_cluster(kube, namespace, NAME, {"replicas": REPLICAS})
    client_service = await kube.get(Service, f"{NAME}-client", namespace=namespace)
    assert client_service.spec is not None and client_service.metadata is not None
    service = (f"http://{client_service.spec.clusterIP}:2379",)  # what an application dials
    members = member_urls(namespace, NAME, range(REPLICAS))
    await _put_all(members, "a")
    await kube.create(
        EtcdBackupResource(
            metadata=ObjectMeta(name="snap-a", namespace=namespace),
            spec={"clusterName": NAME, "destination": {"volume": {"claimName": "backups"}}},
        )
    )
    backup = await _backup_succeeded(kube, namespace, "snap-a")
    served_b = await _put_all(members, "b")
    assert served_b > backup["status"]["revision"]
    old_pods = await _member_pod_uids(kube, namespace, NAME)
    assert len(old_pods) == REPLICAS

    # A confirmation that names another cluster: refused, nothing changed.
    await patch_spec(
        kube, namespace, NAME, {"rollback": {"backup": "snap-a", "confirm": "x/snap-a"}}
    )

    async def refused() -> dict[str, Any] | None:
        got = await get_cluster(kube, namespace, NAME)
        degraded = condition(got, "Degraded")
        return got if degraded and degraded.get("reason") == "RollbackRefused" else None

    got = await eventually(refused, 60, "the unconfirmed rollback refused")
    assert f"{NAME}/snap-a" in str(condition(got, "Degraded"))
    assert "rollback" not in got["status"]
    assert await _count(service, "b") == KEYS
    assert await _member_pod_uids(kube, namespace, NAME) == old_pods

    # Confirmed: rolled back under the same name.
    confirm = {"rollback": {"backup": "snap-a", "confirm": f"{NAME}/snap-a"}}
    await patch_spec(kube, namespace, NAME, confirm)

    async def completed() -> dict[str, Any] | None:
        got = await get_cluster(kube, namespace, NAME)
        record = (got.get("status") or {}).get("rollback") or {}
        return got if record.get("phase") == "Completed" else None

    got = await eventually(completed, 300, "the rollback completed")
    record = got["status"]["rollback"]
    assert record["backup"] == "snap-a" and record["epoch"] == 1
    assert record["revision"] == backup["status"]["revision"]
    assert record["sha256"] == backup["status"]["sha256"]
    assert record["fromRevision"] >= served_b
    assert record["fromClusterID"] == body["status"]["clusterID"]
    assert record["startTime"] <= record["completionTime"]
    # Recorded as soon as seen: every restored member ran, and together they formed the cluster
    # (from then on none is restored from the snapshot again).
    assert record["formed"] is True
    assert record["startedMembers"] == [f"{NAME}-{i}" for i in range(REPLICAS)]
    await wait_ready(kube, namespace, NAME, REPLICAS)
    got = await get_cluster(kube, namespace, NAME)
    assert got["status"]["clusterID"] != body["status"]["clusterID"]
    assert got["status"]["clientEndpoint"] == body["status"]["clientEndpoint"]
    same = await kube.get(Service, f"{NAME}-client", namespace=namespace)
    assert same.metadata is not None and same.metadata.uid == client_service.metadata.uid

    # The same client Service serves A and not B (once the new pods, ready, reach its
    # EndpointSlice and localcluster's proxy: a moment after).
    await settled(lambda: _count(service, "a"), lambda n: n == KEYS, 30, "A via the Service")
    assert await _count(service, "b") == 0
    new_pods = await _member_pod_uids(kube, namespace, NAME)
    assert len(new_pods) == REPLICAS and not new_pods & old_pods

    # The old claims are kept, retired; the members run on fresh ones.
    claims = {
        c.metadata.name: c.metadata.annotations or {}
        async for c in kube.list(
            PersistentVolumeClaim, namespace=namespace, labels={"app.kubernetes.io/instance": NAME}
        )
        if c.metadata and c.metadata.name
    }
    for i in range(REPLICAS):
        assert claims[f"{NAME}-{i}"].get("etcd.operator.io/retired") == "true"
        assert "etcd.operator.io/retired" not in claims[f"{NAME}-{i}-1"]


async def test_two_of_three_volumes_lost_recover_from_the_latest_backup(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    """spec.recovery FromLatestBackup: every member stops and two of three disks come back
    empty. No quorum can ever form again, so the cluster is recreated in place from the newest
    backup; the lost history (keys B) is reported in status, the old claims are kept."""
    ns, name = namespace, "lost"
    await kube.create(
        PersistentVolumeClaim(
            metadata=ObjectMeta(name="backups", namespace=ns),
            spec=PersistentVolumeClaimSpec(
                accessModes=["ReadWriteOnce"],
                resources=VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        )
    )
    spec = {"replicas": 3, "recovery": {"quorumLoss": "FromLatestBackup"}}
    body = await create_ready_cluster(kube, ns, name, spec)
    members = member_urls(ns, name, range(3))
    await _put_all(members, "a")
    await kube.create(
        EtcdBackupResource(
            metadata=ObjectMeta(name="latest", namespace=ns),
            spec={"clusterName": name, "destination": {"volume": {"claimName": "backups"}}},
        )
    )
    backup = await _backup_succeeded(kube, ns, "latest")
    served_b = await _put_all(members, "b")

    async def recorded() -> bool:
        got = await get_cluster(kube, ns, name)
        return int((got.get("status") or {}).get("lastSeenRevision") or 0) >= served_b

    # The revision served rides along status writes made anyway (never one of its own): a new
    # generation (pause, resume) makes one.
    await patch_spec(kube, ns, name, {"paused": True})
    await patch_spec(kube, ns, name, {"paused": False})
    await eventually(recorded, 60, "status to record the last revision seen")
    await patch_spec(kube, ns, name, {"paused": True})
    for i in range(3):
        await kube.delete(Pod, f"{name}-{i}", namespace=ns)

    async def all_gone() -> bool:
        return not await _member_pod_uids(kube, ns, name)

    await eventually(all_gone, 120, "every member pod to stop")
    faults.wipe_volume(localcluster.state, ns, f"{name}-1")
    faults.wipe_volume(localcluster.state, ns, f"{name}-2")
    await patch_spec(kube, ns, name, {"paused": False})

    async def completed() -> dict[str, Any] | None:
        got = await get_cluster(kube, ns, name)
        record = (got.get("status") or {}).get("rollback") or {}
        return got if record.get("phase") == "Completed" else None

    got = await eventually(completed, 300, "the recovery from the latest backup")
    record = got["status"]["rollback"]
    assert record["cause"] == "QuorumLoss" and record["backup"] == "latest"
    assert record["revision"] == backup["status"]["revision"]
    assert record["fromRevision"] >= served_b
    assert record["backupCompletionTime"] == backup["status"]["completionTime"]
    await wait_ready(kube, ns, name, 3)
    got = await get_cluster(kube, ns, name)
    assert got["status"]["clusterID"] != body["status"]["clusterID"]
    assert await _count(member_urls(ns, name, range(3)), "a") == KEYS
    assert await _count(member_urls(ns, name, range(3)), "b") == 0
