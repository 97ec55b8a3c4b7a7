"""The Job that removes one EtcdBackup's stored snapshot (pure builder).

The backup Job's pod, minus etcd: the same image, security, S3 Secret and claim mounts and
the same destination in its environment, running `etcd-operator backup-delete`. Its pods are
labelled apart from the backup's (another component), so they are never taken for backup
attempts nor admitted to etcd by the cluster's NetworkPolicy.
"""

from __future__ import annotations

from lightkube.resources.batch_v1 import Job

from etcd_operator.api.backup import EtcdBackup
from etcd_operator.backup import contract
from etcd_operator.resources.backup_job import (
    BACKUP_LABEL,
    BackupJobInputs,
    backup_job,
    backup_labels,
)
from etcd_operator.resources.labels import COMPONENT_LABEL

BACKUP_DELETE = "backup-delete"  # app.kubernetes.io/component of delete Jobs and their pods
DELETE_LABEL = "etcd.operator.io/backup-delete"  # the EtcdBackup whose snapshot goes


def delete_job_name(backup: EtcdBackup) -> str:
    return f"{backup.name}-delete"


def delete_labels(backup: EtcdBackup) -> dict[str, str]:
    labels = {k: v for k, v in backup_labels(backup).items() if k != BACKUP_LABEL}
    return {**labels, COMPONENT_LABEL: BACKUP_DELETE, DELETE_LABEL: backup.name}


def backup_delete_job(backup: EtcdBackup, image: str, destination: str) -> Job:
    job = backup_job(backup, BackupJobInputs(image=image, endpoints=(), destination=destination))
    labels = delete_labels(backup)
    assert job.metadata is not None and job.spec is not None
    job.metadata.name = delete_job_name(backup)
    job.metadata.labels = labels
    for owner in job.metadata.ownerReferences or []:
        owner.blockOwnerDeletion = False  # the backup is already being deleted
    template = job.spec.template
    assert template.metadata is not None and template.spec is not None
    template.metadata.labels = {**(template.metadata.labels or {}), **labels}
    template.metadata.labels.pop(BACKUP_LABEL, None)
    container = template.spec.containers[0]
    container.args = ["backup-delete"]
    container.env = [e for e in container.env or [] if e.name == contract.ENV_DESTINATION]
    job.spec.backoffLimit = 2  # whatever the backup's: a delete is always worth retrying
    return job
