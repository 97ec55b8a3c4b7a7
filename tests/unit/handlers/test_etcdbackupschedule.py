"""The EtcdBackupSchedule shell and the Delete-policy finalizer: what a round creates,
deletes and writes, and every Kubernetes call it makes is declared for RBAC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from etcd_operator.backup.contract import Result
from etcd_operator.backup.schedule import backup_name
from etcd_operator.handlers import backup_delete, etcdbackupschedule
from etcd_operator.kube import EtcdBackupResource, EtcdBackupScheduleResource, EtcdRestoreResource
from etcd_operator.leader import AlwaysLeader
from etcd_operator.resources.scheduled import SCHEDULE_LABEL, SCHEDULED_AT_ANNOTATION
from unit.support.objects import ObjectsKube, Raw, declared, result_pod

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DEST = {"s3": {"bucket": "backups", "endpointURL": "http://s3:8333"}}


def _schedule(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdBackupSchedule",
        "metadata": {
            "name": "hourly",
            "namespace": "ns",
            "uid": "s-1",
            "generation": 2,
            "creationTimestamp": (NOW - timedelta(days=1)).isoformat(),
        },
        "spec": {
            "clusterName": "demo",
            "schedule": "* * * * *",
            "backupTemplate": {"destination": DEST},
            **spec,
        },
    }


def _backup(minutes_ago: int, phase: str | None, **extra: Any) -> dict[str, Any]:
    at = NOW - timedelta(minutes=minutes_ago)
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdBackup",
        "metadata": {
            "name": backup_name("hourly", at),
            "namespace": "ns",
            "labels": {SCHEDULE_LABEL: "hourly"},
            "annotations": {SCHEDULED_AT_ANNOTATION: at.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "ownerReferences": [{"uid": "s-1", "kind": "EtcdBackupSchedule", "name": "hourly"}],
            **extra,
        },
        "spec": {"clusterName": "demo", "destination": DEST, "deletionPolicy": "Delete"},
        "status": {"phase": phase} if phase else {},
    }


@pytest.fixture(autouse=True)
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    posted: list[tuple[str, str]] = []

    def event(_body: Any, **k: Any) -> None:
        posted.append((k.get("type", "Normal"), k["reason"]))

    monkeypatch.setattr(etcdbackupschedule.kopf, "event", event)
    monkeypatch.setattr(
        etcdbackupschedule.kopf, "info", lambda _b, **k: posted.append(("Normal", k["reason"]))
    )
    monkeypatch.setattr(
        etcdbackupschedule.kopf, "warn", lambda _b, **k: posted.append(("Warning", k["reason"]))
    )
    return posted


def _kube(schedule: dict[str, Any], *backups: dict[str, Any]) -> ObjectsKube:
    return ObjectsKube(
        {(EtcdBackupScheduleResource, "hourly"): Raw(schedule)},
        {EtcdBackupResource: [Raw(b) for b in backups], EtcdRestoreResource: []},
    )


async def _round(kube: ObjectsKube) -> float | None:
    state = etcdbackupschedule.RoundState()
    return await etcdbackupschedule.schedule_round(kube, "ns", "hourly", state)  # type: ignore[arg-type]


async def test_a_due_run_creates_one_backup_owned_labelled_and_annotated() -> None:
    kube = _kube(_schedule())
    delay = await _round(kube)
    assert delay is not None and 0 < delay <= 60
    [created] = kube.created
    body = created.to_dict()
    assert body["metadata"]["name"].startswith("hourly-")  # <schedule>-<minutes>
    assert body["metadata"]["labels"] == {SCHEDULE_LABEL: "hourly"}
    assert SCHEDULED_AT_ANNOTATION in body["metadata"]["annotations"]
    assert body["metadata"]["ownerReferences"][0]["uid"] == "s-1"
    assert body["spec"]["clusterName"] == "demo" and body["spec"]["deletionPolicy"] == "Delete"
    [status] = kube.status_patches
    assert status["active"] == body["metadata"]["name"]
    assert status["nextScheduleTime"] > status["lastScheduleTime"]
    assert kube.calls <= declared(), kube.calls - declared()


async def test_a_run_already_made_is_not_made_again_though_status_never_said_so() -> None:
    made = _backup(0, "Running")
    kube = _kube(_schedule(), made)
    await _round(kube)
    assert kube.created == []
    assert kube.status_patches[0]["active"] == made["metadata"]["name"]


async def test_retention_prunes_and_says_so(events: list[tuple[str, str]]) -> None:
    kube = _kube(
        _schedule(retention={"keepLast": 1}), _backup(2, "Succeeded"), _backup(1, "Succeeded")
    )
    await _round(kube)
    assert kube.deleted == [(EtcdBackupResource, _backup(2, None)["metadata"]["name"])]
    assert ("Normal", "BackupPruned") in events


async def test_a_failed_backup_degrades_the_schedule_once(events: list[tuple[str, str]]) -> None:
    failed = _backup(1, "Failed")
    failed["status"]["conditions"] = [
        {"type": "Failed", "status": "True", "reason": "NoSuchBucket", "message": "",
         "lastTransitionTime": NOW.isoformat()}
    ]  # fmt: skip
    kube = _kube(_schedule(), failed)
    await _round(kube)
    status = kube.status_patches[-1]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "BackupFailed")
    assert status["lastFailedReason"] == "NoSuchBucket"
    assert ("Warning", "BackupFailed") in events


async def test_a_cron_croniter_refuses_is_a_degraded_condition(
    events: list[tuple[str, str]],
) -> None:
    kube = _kube(_schedule(schedule="61 * * * *"))
    assert await _round(kube) == etcdbackupschedule.MAX_DELAY
    assert kube.created == []
    status = kube.status_patches[-1]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Degraded"] == ("True", "InvalidSpec")
    assert conditions["Ready"] == ("False", "InvalidSpec")
    assert ("Warning", "InvalidSpec") in events


async def test_suspended_makes_nothing() -> None:
    kube = _kube(_schedule(suspend=True))
    await _round(kube)
    assert kube.created == []
    status = kube.status_patches[-1]
    assert "nextScheduleTime" not in status
    assert any(c["type"] == "Suspended" and c["status"] == "True" for c in status["conditions"])


# -- deletionPolicy Delete ------------------------------------------------------------------


class _Memo:
    def __init__(self, kube: ObjectsKube) -> None:
        self.kube = kube
        self.leader = AlwaysLeader()


async def test_deleting_a_delete_policy_backup_runs_a_job_then_releases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backup_delete.kopf, "info", lambda *a, **k: None)
    body = _backup(1, "Succeeded")
    name = body["metadata"]["name"]
    kube = _kube(_schedule())  # pruned by its schedule, which stays
    with pytest.raises(kopf.TemporaryError):
        await backup_delete.delete_snapshot(body=body, name=name, namespace="ns", memo=_Memo(kube))
    [job] = kube.created
    assert isinstance(job, Job) and job.metadata and job.metadata.name == f"{name}-delete"
    container = job.spec.template.spec.containers[0]  # type: ignore[union-attr]
    assert container.args == ["backup-delete"]
    assert [e.name for e in container.env or []] == ["ETCD_BACKUP_DESTINATION"]
    assert "etcd.operator.io/backup" not in (job.spec.template.metadata.labels or {})  # type: ignore[union-attr]
    # The Job ran: the handler returns and kopf releases the finalizer.
    kube.objects[(Job, f"{name}-delete")] = job
    kube.listed[Pod] = [result_pod("x-delete-abc", Result("Succeeded", "SnapshotDeleted", "gone"))]
    await backup_delete.delete_snapshot(body=body, name=name, namespace="ns", memo=_Memo(kube))
    assert len(kube.created) == 1
    assert kube.calls <= declared(), kube.calls - declared()


@pytest.mark.parametrize("schedule", [None, "deleting"])
async def test_a_backup_deleted_with_its_schedule_keeps_its_snapshot(
    monkeypatch: pytest.MonkeyPatch, schedule: str | None
) -> None:
    kept: list[str] = []
    monkeypatch.setattr(backup_delete.kopf, "info", lambda _b, **k: kept.append(k["reason"]))
    body = _backup(1, "Succeeded")
    going = _schedule()
    going["metadata"]["deletionTimestamp"] = NOW.isoformat()
    kube = ObjectsKube({}, {}) if schedule is None else _kube(going)
    await backup_delete.delete_snapshot(
        body=body, name=body["metadata"]["name"], namespace="ns", memo=_Memo(kube)
    )
    assert kube.created == [] and kept == ["SnapshotKept"]
    assert kube.calls <= declared(), kube.calls - declared()


async def test_a_failed_backup_stored_nothing_and_goes_at_once() -> None:
    body = _backup(1, "Failed")
    kube = ObjectsKube({}, {})
    await backup_delete.delete_snapshot(
        body=body, name=body["metadata"]["name"], namespace="ns", memo=_Memo(kube)
    )
    assert kube.created == [] and kube.calls == set()


def test_only_delete_policy_backups_get_the_deletion_handler() -> None:
    assert backup_delete._deletes_snapshot(spec={"deletionPolicy": "Delete"})  # type: ignore[arg-type]
    assert not backup_delete._deletes_snapshot(spec={})  # type: ignore[arg-type]


async def test_a_due_drill_restores_the_newest_success_and_its_result_reaches_status(
    events: list[tuple[str, str]],
) -> None:
    older, newest = _backup(3, "Succeeded"), _backup(2, "Succeeded")
    schedule = _schedule(restoreDrill={"schedule": "* * * * *"})
    kube = _kube(schedule, older, newest)
    await _round(kube)
    [restore] = [o for o in kube.created if isinstance(o, EtcdRestoreResource)]
    body = restore.to_dict()
    assert body["metadata"]["name"].startswith("hourly-drill-")
    assert body["metadata"]["ownerReferences"][0]["uid"] == "s-1"
    spec = body["spec"]
    assert spec["drill"] is True and spec["source"] == {
        "backup": {"name": newest["metadata"]["name"]}
    }
    assert spec["cluster"]["spec"] == {"replicas": 1}
    assert kube.calls <= declared(), kube.calls - declared()
    # The drill ran: its result is copied into status, with an Event.
    done = {**body, "status": {"phase": "Succeeded", "drill": {"result": "Passed"}}}
    kube.listed[EtcdRestoreResource] = [Raw(done)]
    await _round(kube)
    last = kube.status_patches[-1]["lastDrill"]
    assert (last["name"], last["result"]) == (body["metadata"]["name"], "Passed")
    assert last["backup"] == newest["metadata"]["name"]
    assert ("Normal", "DrillPassed") in events
