"""EtcdBackupSchedule against localcluster: a real one-member cluster, a real S3 server
(SeaweedFS), backups made by the schedule every minute, an older deletionPolicy Delete one
pruned (resource, object and manifest), the schedule suspended, then deleted."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from etcd_operator.api.common import API_VERSION
from etcd_operator.kube import EtcdBackupResource, EtcdBackupScheduleResource
from harness.clusters import create_ready_cluster, eventually
from harness.operator_process import OperatorProcess
from harness.s3server import REGION, S3Server

pytestmark = pytest.mark.e2e

BUCKET = "etcd-schedules"
SCHEDULE = "every-minute"
LABEL = "etcd.operator.io/backup-schedule"


def _destination(s3: S3Server) -> dict[str, Any]:
    return {
        "s3": {
            "bucket": BUCKET,
            "prefix": "sched",
            "endpointURL": s3.pod_endpoint,
            "region": REGION,
            "forcePathStyle": True,
            "credentialsSecretName": "s3-keys",
        }
    }


async def _body(kube: AsyncClient, kind: Any, ns: str, name: str) -> dict[str, Any] | None:
    try:
        got = await kube.get(kind, name, namespace=ns)
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise
    body: dict[str, Any] = got.to_dict()  # type: ignore[no-untyped-call]
    return body


async def _scheduled(kube: AsyncClient, ns: str) -> dict[str, dict[str, Any]]:
    return {
        b.metadata.name: b.to_dict()  # type: ignore[no-untyped-call,union-attr]
        async for b in kube.list(EtcdBackupResource, namespace=ns, labels={LABEL: SCHEDULE})
    }


def _keys(s3: S3Server, prefix: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _key(location: str) -> str:
    return location.removeprefix(f"s3://{BUCKET}/")


async def _succeeded(kube: AsyncClient, ns: str, name: str, timeout: float) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await _body(kube, EtcdBackupResource, ns, name)
        phase = ((body or {}).get("status") or {}).get("phase")
        assert phase != "Failed", body
        return body if phase == "Succeeded" else None

    return await eventually(probe, timeout, f"backup {name} Succeeded")


async def _gone(kube: AsyncClient, ns: str, name: str, timeout: float) -> None:
    async def probe() -> bool:
        return await _body(kube, EtcdBackupResource, ns, name) is None

    await eventually(probe, timeout, f"backup {name} deleted")


async def test_schedule_makes_prunes_and_suspends_backups_and_delete_policy_removes_objects(
    kube: AsyncClient, namespace: str, operator: OperatorProcess, s3_server: S3Server
) -> None:
    ns = namespace
    s3_server.create_bucket(BUCKET)
    keys = {"accessKeyID": s3_server.access_key, "secretAccessKey": s3_server.secret_key}
    data = {k: base64.b64encode(v.encode()).decode() for k, v in keys.items()}
    await kube.create(Secret(metadata=ObjectMeta(name="s3-keys", namespace=ns), data=data))
    await create_ready_cluster(kube, ns, "sched", {"replicas": 1})

    schedule = EtcdBackupScheduleResource(
        metadata=ObjectMeta(name=SCHEDULE, namespace=ns),
        spec={
            "clusterName": "sched",
            "schedule": "* * * * *",
            "backupTemplate": {"destination": _destination(s3_server)},
            "retention": {"keepLast": 1},
        },
    )
    created = await kube.create(schedule)
    assert created.metadata is not None and created.metadata.uid is not None

    # An older backup of the schedule's (made here by hand, as by an earlier run of it), with
    # deletionPolicy Delete: once the schedule's own first backup succeeded, keepLast 1
    # prunes it, resource, object and manifest.
    older = EtcdBackupResource(
        metadata=ObjectMeta(
            name="older",
            namespace=ns,
            labels={LABEL: SCHEDULE},
            ownerReferences=[
                OwnerReference(
                    apiVersion=API_VERSION,
                    kind="EtcdBackupSchedule",
                    name=SCHEDULE,
                    uid=created.metadata.uid,
                )
            ],
        ),
        spec={
            "clusterName": "sched",
            "destination": _destination(s3_server),
            "deletionPolicy": "Delete",
        },
    )
    await kube.create(older)
    body = await _succeeded(kube, ns, "older", 120)
    assert "etcd.operator.io/finalizer" in body["metadata"].get("finalizers", [])
    older_key = _key(body["status"]["location"])
    assert _keys(s3_server, older_key) == [older_key, older_key + ".json"]

    # The schedule's own backup at the next minute, owned and labelled.
    async def scheduled_backup() -> str | None:
        names = sorted(n for n in await _scheduled(kube, ns) if n != "older")
        return names[-1] if names else None

    second = await eventually(scheduled_backup, 90, "the first scheduled backup")
    second_body = await _succeeded(kube, ns, second, 90)
    owners = second_body["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in owners] == [("EtcdBackupSchedule", SCHEDULE)]
    assert second_body["spec"]["deletionPolicy"] == "Delete"
    await _gone(kube, ns, "older", 90)
    assert _keys(s3_server, older_key) == []  # the object and its manifest went too
    second_key = _key(second_body["status"]["location"])
    assert _keys(s3_server, second_key) == [second_key, second_key + ".json"]

    async def status_after_second() -> dict[str, Any] | None:
        got = await _body(kube, EtcdBackupScheduleResource, ns, SCHEDULE)
        status = (got or {}).get("status") or {}
        return status if status.get("lastSuccessfulBackup") == second else None

    status = await eventually(status_after_second, 30, "status names the second backup")
    assert status["nextScheduleTime"] > status["lastScheduleTime"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "Suspended": "False", "Degraded": "False"}

    # Suspended: the next minute passes without a backup.
    await kube.patch(
        EtcdBackupScheduleResource, SCHEDULE, {"spec": {"suspend": True}},
        namespace=ns, patch_type=PatchType.MERGE,
    )  # fmt: skip

    async def suspended() -> dict[str, Any] | None:
        got = await _body(kube, EtcdBackupScheduleResource, ns, SCHEDULE)
        status = (got or {}).get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return status if conditions.get("Suspended") == "True" else None

    status = await eventually(suspended, 30, "the schedule Suspended")
    assert "nextScheduleTime" not in status
    minute = datetime.now(UTC).replace(second=0, microsecond=0).timestamp() + 60
    # A backup the schedule would have made would exist a few seconds into the next minute.
    remaining = minute + 10 - datetime.now(UTC).timestamp()

    async def after_next_minute() -> bool:
        return datetime.now(UTC).timestamp() >= minute + 10

    await eventually(after_next_minute, remaining + 5, "the next minute", interval=1.0)
    assert sorted(await _scheduled(kube, ns)) == [second]

    # Deleting the schedule takes its EtcdBackups with it but keeps their snapshots.
    await kube.delete(EtcdBackupScheduleResource, SCHEDULE, namespace=ns)
    await _gone(kube, ns, second, 60)
    assert _keys(s3_server, second_key) == [second_key, second_key + ".json"]
