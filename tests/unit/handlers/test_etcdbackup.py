"""The EtcdBackup shell: a round creates the Job once, follows its pods, writes status, and
every Kubernetes call it makes is declared for RBAC."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from etcd_operator import metrics
from etcd_operator.backup.contract import Result
from etcd_operator.handlers import etcdbackup
from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource
from unit.support.objects import ObjectsKube, Raw, declared, result_pod

CLUSTER = {
    "apiVersion": "etcd.operator.io/v1alpha1",
    "kind": "EtcdCluster",
    "metadata": {"name": "demo", "namespace": "ns", "uid": "c-1"},
    "spec": {"replicas": 3},
    "status": {
        "members": [
            {"name": f"demo-{i}", "clientURL": f"http://demo-{i}.demo.ns.svc.cluster.local:2379"}
            for i in range(3)
        ]
    },
}
BACKUP = {
    "apiVersion": "etcd.operator.io/v1alpha1",
    "kind": "EtcdBackup",
    "metadata": {"name": "nightly", "namespace": "ns", "uid": "b-1", "generation": 1},
    "spec": {"clusterName": "demo", "destination": {"volume": {"claimName": "keep"}}},
}


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr(
        etcdbackup.kopf, "event", lambda _b, **k: posted.append((k["type"], k["reason"]))
    )
    return posted


def _objects(**extra: Any) -> dict[tuple[Any, str], Any]:
    from lightkube.resources.core_v1 import PersistentVolumeClaim

    objects: dict[tuple[Any, str], Any] = {
        (EtcdBackupResource, "nightly"): Raw(BACKUP),
        (EtcdClusterResource, "demo"): Raw(CLUSTER),
        (PersistentVolumeClaim, "keep"): object(),
    }
    objects.update(extra)
    return objects


async def test_the_first_round_creates_the_job_and_says_pending() -> None:
    kube = ObjectsKube(_objects())
    delay = await etcdbackup.backup_round(kube, "ns", "nightly")  # type: ignore[arg-type]
    assert delay == etcdbackup.RUNNING_DELAY
    (job,) = kube.created
    assert isinstance(job, Job) and job.metadata and job.metadata.name == "nightly-backup"
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}  # type: ignore[union-attr]
    assert env["ETCD_BACKUP_ENDPOINTS"].count("http://demo-") == 3
    assert kube.status_patches[-1]["phase"] == "Pending"
    # Whose backup it is: the cluster's UID, on the Job and in status.
    assert job.metadata.annotations == {"etcd.operator.io/cluster-uid": "c-1"}
    assert kube.status_patches[-1]["clusterUID"] == "c-1"
    assert kube.calls <= declared()


async def test_the_cluster_uid_comes_from_the_job_when_a_crash_lost_the_status_write() -> None:
    annotations = {"etcd.operator.io/cluster-uid": "c-1"}
    job = Job(metadata=ObjectMeta(name="nightly-backup", annotations=annotations))
    kube = ObjectsKube(_objects() | {(Job, "nightly-backup"): job})
    await etcdbackup.backup_round(kube, "ns", "nightly")  # type: ignore[arg-type]
    assert kube.created == []
    assert kube.status_patches[-1]["clusterUID"] == "c-1"


async def test_a_missing_cluster_blocks_with_a_reason_and_no_job(
    _no_events: list[tuple[str, str]],
) -> None:
    objects = _objects()
    del objects[(EtcdClusterResource, "demo")]
    kube = ObjectsKube(objects)
    assert await etcdbackup.backup_round(kube, "ns", "nightly") == etcdbackup.BLOCKED_DELAY  # type: ignore[arg-type]
    assert kube.created == []
    assert _no_events == [("Warning", "ClusterNotFound")]
    assert kube.calls <= declared()


async def test_a_pod_result_ends_the_backup_with_its_fields() -> None:
    result = Result(
        "Succeeded", "SnapshotStored", "ok", location="file:///backup/x.db", size=5,
        sha256="b" * 64, revision=3, cluster_id="9", etcd_version="3.6.7", member="demo-1",
        start_time="2026-01-01T00:00:00Z", completion_time="2026-01-01T00:00:01Z",
    )  # fmt: skip
    pod = result_pod("nightly-backup-abcde", result, phase="Succeeded")
    job = Job(metadata=ObjectMeta(name="nightly-backup"))
    kube = ObjectsKube(_objects() | {(Job, "nightly-backup"): job}, {Pod: [pod]})
    assert await etcdbackup.backup_round(kube, "ns", "nightly") is None  # type: ignore[arg-type]
    status = kube.status_patches[-1]
    assert (status["phase"], status["member"], status["revision"]) == ("Succeeded", "demo-1", 3)
    assert kube.created == []
    assert kube.calls <= declared()


def _last_backup(namespace: str, cluster: str) -> float | None:
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "etcd_operator_cluster_last_backup_timestamp_seconds" and (
                sample.labels == {"namespace": namespace, "name": cluster}
            ):
                return float(sample.value)
    return None


STORED = {
    **BACKUP,
    "status": {"phase": "Succeeded", "completionTime": "2026-01-01T00:00:01Z"},
}


async def test_a_stored_backup_seen_again_brings_back_the_last_backup_series() -> None:
    """After a restart the series comes from the recorded status."""
    metrics.forget_cluster("ns", "demo")
    kube = ObjectsKube(_objects() | {(EtcdBackupResource, "nightly"): Raw(STORED)})
    assert await etcdbackup.backup_round(kube, "ns", "nightly") is None  # type: ignore[arg-type]
    assert _last_backup("ns", "demo") == 1767225601.0
    assert kube.status_patches == [] and kube.created == []
    assert kube.calls <= declared()
    metrics.forget_cluster("ns", "demo")


async def test_a_deleted_cluster_s_stored_backup_makes_no_series() -> None:
    metrics.forget_cluster("ns", "demo")
    objects = _objects() | {(EtcdBackupResource, "nightly"): Raw(STORED)}
    del objects[(EtcdClusterResource, "demo")]
    kube = ObjectsKube(objects)
    assert await etcdbackup.backup_round(kube, "ns", "nightly") is None  # type: ignore[arg-type]
    assert _last_backup("ns", "demo") is None
