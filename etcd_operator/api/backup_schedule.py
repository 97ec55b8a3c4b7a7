"""`EtcdBackupSchedule` (v1alpha1): EtcdBackups of a cluster on a cron schedule, pruned by
a retention policy, and optionally restore drills of the newest one.

The schedule creates each backup as an ordinary EtcdBackup owned by it (its spec is the
template plus the cluster); what the schedule decides (what is due, what to prune) is
etcd_operator/backup/schedule.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import ConfigDict, Field, field_validator, model_validator

from etcd_operator.api.backup_spec import BackupDestination, BackupPodTemplate
from etcd_operator.api.cluster import (
    CLUSTER_NAME_PATTERN,
    MAX_CLUSTER_NAME_LENGTH,
    parse_body,
)
from etcd_operator.api.common import (
    ApiModel,
    Condition,
    Resource,
    RetentionPolicy,
    cel,
    conditions_field,
    validations,
)
from etcd_operator.api.duration import DURATION_PATTERN, parse_duration

KIND = "EtcdBackupSchedule"
PLURAL = "etcdbackupschedules"
SINGULAR = "etcdbackupschedule"
SHORT_NAMES = ("etcdbs",)
# Backups are named `<schedule>-<minutes since the epoch>` (8 digits until the year 2160)
# and EtcdBackup names are at most 50 characters.
MAX_SCHEDULE_NAME_LENGTH = 41

# Five fields (minute hour day-of-month month day-of-week) or a macro; croniter reads the
# rest, and what it refuses is a Degraded condition (CEL cannot parse cron).
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( +\S+){4})$"


def check_cron(expression: str) -> str:
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a cron expression croniter accepts")
    return expression


class BackupTemplate(ApiModel):
    """An EtcdBackup's spec without the cluster: what each scheduled backup gets."""

    destination: BackupDestination = Field(
        description="Where the snapshots go; each backup gets its own key (or file) under it."
    )
    pod_template: BackupPodTemplate | None = Field(
        default=None, description="Resources and placement of the backup pods."
    )
    backoff_limit: int = Field(
        default=2, ge=0, le=10, description="Attempts after the first before a backup is Failed."
    )
    deletion_policy: RetentionPolicy = Field(
        default="Delete",
        description="Delete (default): a pruned or deleted backup's snapshot and manifest are "
        "removed from the store. Retain: only the EtcdBackup goes; the snapshot stays.",
    )


class Retention(ApiModel):
    """Which Succeeded backups stay; a backup outside either limit is pruned, but the newest
    Succeeded one always stays."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.keepLast) || has(self.maxAge)", "name keepLast, maxAge or both")
        )
    )

    keep_last: int | None = Field(
        default=None, ge=1, le=1000, description="Keep at most this many Succeeded backups."
    )
    max_age: str | None = Field(
        default=None,
        max_length=64,
        pattern=DURATION_PATTERN,
        description="Prune Succeeded backups scheduled longer ago than this, e.g. 720h.",
    )

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if self.keep_last is None and self.max_age is None:
            raise ValueError("name keepLast, maxAge or both")
        return self

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class RestoreDrill(ApiModel):
    """Restore the newest Succeeded backup into a throwaway one-member cluster on a schedule."""

    schedule: str = Field(
        max_length=256,
        pattern=CRON_PATTERN,
        description="Cron expression of the drills, in the schedule's timeZone.",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)


class EtcdBackupScheduleSpec(ApiModel):
    """Backups of one EtcdCluster of the namespace, on a schedule."""

    cluster_name: str = Field(
        max_length=MAX_CLUSTER_NAME_LENGTH,
        pattern=CLUSTER_NAME_PATTERN,
        description="The EtcdCluster to back up, in the same namespace.",
    )
    schedule: str = Field(
        max_length=256,
        pattern=CRON_PATTERN,
        description="Cron expression (minute hour day-of-month month day-of-week, or @daily "
        "and the like) of the backups.",
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone the schedule is read in, e.g. Europe/Berlin; unset: UTC.",
    )
    suspend: bool = Field(
        default=False, description="Start no new backups (retention still prunes)."
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="A run missed by more than this (e.g. while the operator was down) is "
        "skipped; unset: the one latest missed run is made, never more.",
        json_schema_extra={"format": "int64"},
    )
    concurrency_policy: Literal["Forbid"] = Field(
        default="Forbid",
        description="Forbid: no backup starts while the schedule's previous one still runs.",
    )
    backup_template: BackupTemplate = Field(description="The spec of each backup.")
    retention: Retention | None = Field(
        default=None, description="Which Succeeded backups to keep; unset: all of them."
    )
    failed_history_limit: int = Field(
        default=3, ge=0, le=100, description="Failed backups kept; older ones are deleted."
    )
    restore_drill: RestoreDrill | None = Field(
        default=None, description="Regular restore drills of the newest Succeeded backup."
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value


class LastDrill(ApiModel):
    """The newest restore drill that has a result."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="The drill's EtcdRestore.")
    backup: str | None = Field(default=None, description="The EtcdBackup it restored.")
    result: str | None = Field(default=None, description="Passed or Failed.")
    time: datetime | None = Field(default=None, description="When the result was recorded.")


class EtcdBackupScheduleStatus(ApiModel):
    """What the schedule did and will do."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(default=None, ge=0, description="Generation seen.")
    conditions: list[Condition] | None = conditions_field(
        "Ready, Suspended and Degraded, with reasons."
    )
    last_schedule_time: datetime | None = Field(
        default=None, description="The scheduled time of the newest backup created."
    )
    next_schedule_time: datetime | None = Field(
        default=None, description="When the next backup is due (unset while suspended)."
    )
    active: str | None = Field(default=None, description="The backup running now.")
    last_successful_time: datetime | None = Field(
        default=None, description="When the newest Succeeded backup completed."
    )
    last_successful_backup: str | None = Field(
        default=None, description="The newest Succeeded backup."
    )
    last_failed_time: datetime | None = Field(
        default=None, description="When the newest Failed backup failed."
    )
    last_failed_backup: str | None = Field(default=None, description="The newest Failed backup.")
    last_failed_reason: str | None = Field(default=None, description="Why it failed.")
    last_drill_schedule_time: datetime | None = Field(
        default=None, description="The scheduled time of the newest restore drill created."
    )
    last_drill: LastDrill | None = Field(
        default=None, description="The newest restore drill with a result."
    )


class EtcdBackupSchedule(Resource):
    kind: Literal["EtcdBackupSchedule"] = "EtcdBackupSchedule"
    spec: EtcdBackupScheduleSpec
    status: EtcdBackupScheduleStatus | None = None


def parse_schedule(body: Mapping[str, Any]) -> EtcdBackupSchedule:
    """A kopf body -> EtcdBackupSchedule, or InvalidSpecError naming each bad field."""
    return parse_body(EtcdBackupSchedule, KIND, body)


def parse_schedule_status(body: Mapping[str, Any]) -> EtcdBackupScheduleStatus:
    """Only the status (readable even when the spec is not)."""
    status = body.get("status") or {}
    return EtcdBackupScheduleStatus.model_validate(status, by_alias=True)
