"""What an EtcdBackupSchedule creates: one EtcdBackup per run, one drill EtcdRestore per
drill run (pure builders, as plain bodies).

Each carries the schedule's label, an owner reference to it and, as an annotation, the
time it was scheduled for: the durable record of which runs were made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from etcd_operator.api.backup_schedule import EtcdBackupSchedule
from etcd_operator.backup.schedule import backup_name, drill_cluster_name, drill_name
from etcd_operator.resources.labels import owner_reference

SCHEDULE_LABEL = "etcd.operator.io/backup-schedule"
SCHEDULED_AT_ANNOTATION = "etcd.operator.io/scheduled-at"


def format_time(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _metadata(schedule: EtcdBackupSchedule, name: str, run: datetime) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": schedule.namespace,
        "labels": {SCHEDULE_LABEL: schedule.name},
        "annotations": {SCHEDULED_AT_ANNOTATION: format_time(run)},
        "ownerReferences": [owner_reference(schedule).to_dict()],
    }


def scheduled_backup(schedule: EtcdBackupSchedule, run: datetime) -> dict[str, Any]:
    """The EtcdBackup of one run: the template plus the cluster."""
    spec = {"clusterName": schedule.spec.cluster_name, **schedule.spec.backup_template.to_k8s()}
    return {
        "apiVersion": schedule.api_version,
        "kind": "EtcdBackup",
        "metadata": _metadata(schedule, backup_name(schedule.name, run), run),
        "spec": spec,
    }


def drill_restore(schedule: EtcdBackupSchedule, run: datetime, backup: str) -> dict[str, Any]:
    """The drill EtcdRestore of one run: `backup` into a throwaway one-member cluster."""
    return {
        "apiVersion": schedule.api_version,
        "kind": "EtcdRestore",
        "metadata": _metadata(schedule, drill_name(schedule.name, run), run),
        "spec": {
            "source": {"backup": {"name": backup}},
            "cluster": {"name": drill_cluster_name(schedule.name, run), "spec": {"replicas": 1}},
            "drill": True,
        },
    }
