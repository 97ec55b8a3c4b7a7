"""kopf wiring for EtcdBackups whose deletionPolicy is Delete: removing the stored snapshot
before the resource goes (thin shell).

kopf holds the operator's finalizer on such a backup (a mandatory deletion handler); when
it is deleted, a short Job of the operator's image removes the snapshot and its manifest,
and only once that Job completed does the handler return and kopf release the finalizer.
A backup that never stored anything (Failed, or never started) goes at once. A backup
still running is stopped first (its Job deleted), so nothing is written after the delete.
A backup deleted because its schedule is being deleted keeps its snapshot: removing a
schedule is not a decision to destroy every backup it took (only its retention prunes).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from lightkube import AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from etcd_operator import rbac
from etcd_operator.api import GROUP, VERSION, InvalidSpecError
from etcd_operator.api.backup import PLURAL, BackupPhase, EtcdBackup, parse_backup
from etcd_operator.backup.contract import Result
from etcd_operator.backup.destination import location_of, to_env
from etcd_operator.handlers.apply import operator_image
from etcd_operator.handlers.idempotent import create_once, delete_once, get_or_none
from etcd_operator.kube import EtcdBackupResource, EtcdBackupScheduleResource
from etcd_operator.resources.backup_delete_job import (
    DELETE_LABEL,
    backup_delete_job,
    delete_job_name,
)
from etcd_operator.resources.backup_job import BACKUP_LABEL, CONTAINER, job_name

rbac.needs(Job, "get", "create", "delete", why="backup deletion: the Job removing the snapshot")
rbac.needs(Pod, "list", why="backup deletion: the delete pod's result, or backup pods still up")
rbac.needs(
    EtcdBackupScheduleResource, "get", why="backup deletion: is the owning schedule going too?"
)
rbac.needs(
    EtcdBackupResource, "patch", why="kopf: the finalizer of backups with deletionPolicy Delete"
)

log = logging.getLogger(__name__)
POLL_DELAY = 2.0
FAILED_DELAY = 30.0


def _deletes_snapshot(spec: kopf.Spec, **_: Any) -> bool:
    return spec.get("deletionPolicy") == "Delete"


async def _pods(kube: AsyncClient, namespace: str, label: str, value: str) -> list[Pod]:
    return [pod async for pod in kube.list(Pod, namespace=namespace, labels={label: value})]


def _result(pods: list[Pod]) -> Result | None:
    """What the delete pods left in their termination messages: a success if any
    succeeded (pods of an earlier, failed Job may linger), else a failure."""
    found = None
    for pod in pods:
        for status in (pod.status.containerStatuses if pod.status else None) or []:
            terminated = status.state.terminated if status.state else None
            result = None if terminated is None else Result.from_json(terminated.message or "")
            if status.name == CONTAINER and result is not None:
                if result.outcome == "Succeeded":
                    return result
                found = result
    return found


def _job_failed(job: Job) -> bool:
    conditions = (job.status.conditions if job.status else None) or []
    return any(c.type == "Failed" and c.status == "True" for c in conditions)


def owning_schedule(body: kopf.Body) -> str | None:
    """The EtcdBackupSchedule that owns this backup, if any (pure)."""
    for owner in body.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("kind") == "EtcdBackupSchedule":
            return str(owner.get("name"))
    return None


async def _schedule_going(kube: AsyncClient, schedule: str, namespace: str) -> bool:
    found = await get_or_none(kube, EtcdBackupScheduleResource, schedule, namespace)
    return found is None or bool(found.to_dict().get("metadata", {}).get("deletionTimestamp"))


def stores_nothing(backup: EtcdBackup) -> bool:
    """A Failed backup's writer aborted: nothing was stored (pure)."""
    status = backup.status
    return status is not None and status.phase == BackupPhase.FAILED


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_deletes_snapshot)
async def delete_snapshot(
    body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    if not memo.leader.is_leader():
        raise kopf.TemporaryError("not the leader", delay=5.0)
    try:
        backup = parse_backup(dict(body))
    except InvalidSpecError as e:
        log.warning("%s/%s: not a backup the operator can read, released: %s", namespace, name, e)
        return
    if stores_nothing(backup):
        return
    kube: AsyncClient = memo.kube
    ns = backup.namespace
    schedule = owning_schedule(body)
    if schedule is not None and await _schedule_going(kube, schedule, ns):
        kopf.info(
            body,
            reason="SnapshotKept",
            message=f"EtcdBackupSchedule {schedule} is deleted: the snapshot stays where it is",
        )
        return
    # A backup still being taken is stopped first, so nothing is written after the delete.
    if backup.status is None or backup.status.phase != BackupPhase.SUCCEEDED:
        if await get_or_none(kube, Job, job_name(backup), ns) is not None:
            await delete_once(kube, Job, job_name(backup), ns)
        if await _pods(kube, ns, BACKUP_LABEL, backup.name):
            raise kopf.TemporaryError("waiting for the backup's pods to stop", delay=POLL_DELAY)
    job = await get_or_none(kube, Job, delete_job_name(backup), ns)
    if job is None:
        await create_once(
            kube, backup_delete_job(backup, operator_image(), to_env(location_of(backup)))
        )
        kopf.info(body, reason="DeletingSnapshot", message=f"Job {delete_job_name(backup)}")
        raise kopf.TemporaryError("the delete Job was created", delay=POLL_DELAY)
    result = _result(await _pods(kube, ns, DELETE_LABEL, backup.name))
    if result is not None and result.outcome == "Succeeded":
        log.info("%s/%s: %s", ns, name, result.message)
        return  # kopf releases the finalizer; the Job goes with its owner
    if _job_failed(job):
        reason = result.reason if result is not None else "DeleteJobFailed"
        message = result.message if result is not None else f"Job {job.metadata.name} failed"
        kopf.warn(body, reason=reason, message=f"the snapshot was not deleted: {message}")
        # A new Job later: the store may come back, or the user may fix the credentials.
        await delete_once(kube, Job, delete_job_name(backup), ns)
        raise kopf.TemporaryError(message, delay=FAILED_DELAY)
    raise kopf.TemporaryError("the delete Job runs", delay=POLL_DELAY)
