"""The `EtcdBackup` object (spec, status) as handlers see it, and parsing it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field

from etcd_operator.api.backup_spec import EtcdBackupSpec
from etcd_operator.api.cluster import parse_body
from etcd_operator.api.common import ApiModel, Condition, Resource, Sha256, conditions_field

KIND = "EtcdBackup"
PLURAL = "etcdbackups"
SINGULAR = "etcdbackup"
SHORT_NAMES = ("etcdbk",)
# Job and pod names derive from the backup's name: "<name>-backup" must fit a DNS label
# (63) with the Job controller's 5-character pod suffix.
MAX_BACKUP_NAME_LENGTH = 50
_HEX_ID = r"^[0-9a-f]{1,16}$"


class BackupPhase(StrEnum):
    PENDING = "Pending"  # accepted; the Job is not created yet or has not started
    RUNNING = "Running"  # the Job's pod streams the snapshot
    SUCCEEDED = "Succeeded"  # the snapshot and its manifest are stored
    FAILED = "Failed"  # every attempt failed, or the backup cannot start; see conditions


class EtcdBackupStatus(ApiModel):
    """What the backup did; everything but phase and conditions is set once it succeeded."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(default=None, ge=0, description="Generation seen.")
    phase: BackupPhase | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed."
    )
    conditions: list[Condition] | None = conditions_field(
        "Complete and Failed (with the reason of the last failure)."
    )
    job_name: str | None = Field(default=None, description="The Job doing the work.")
    location: str | None = Field(
        default=None,
        description="Where the snapshot is: s3://bucket/key or file://<path in the claim>.",
    )
    size: int | None = Field(
        default=None, ge=0, description="Bytes stored.", json_schema_extra={"format": "int64"}
    )
    sha256: Sha256 | None = Field(default=None, description="sha256 of the stored snapshot, hex.")
    revision: int | None = Field(
        default=None,
        ge=0,
        description="etcd revision of the snapshot.",
        json_schema_extra={"format": "int64"},
    )
    keys: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Keys at `revision`, counted on the member right after the snapshot; unset when"
            " that revision was compacted meanwhile. Restore drills check it."
        ),
        json_schema_extra={"format": "int64"},
    )
    cluster_id: str | None = Field(
        default=None, alias="clusterID", pattern=_HEX_ID, description="etcd cluster ID, hex."
    )
    cluster_uid: str | None = Field(
        default=None,
        alias="clusterUID",
        description=(
            "UID of the EtcdCluster backed up: tells this cluster's backups from those of an"
            " earlier one of the same name (rollbacks and FromLatestBackup recovery refuse those)."
        ),
    )
    etcd_version: str | None = Field(default=None, description="etcd version of the member.")
    member: str | None = Field(default=None, description="The member the snapshot came from.")
    start_time: datetime | None = Field(default=None, description="When the snapshot started.")
    completion_time: datetime | None = Field(default=None, description="When it was stored.")
    failed_attempts: int | None = Field(default=None, ge=0, description="Attempts that failed.")


class EtcdBackup(Resource):
    kind: Literal["EtcdBackup"] = "EtcdBackup"
    spec: EtcdBackupSpec
    status: EtcdBackupStatus | None = None


def parse_backup(body: Mapping[str, Any]) -> EtcdBackup:
    """A kopf body -> EtcdBackup, or InvalidSpecError naming each bad field."""
    return parse_body(EtcdBackup, KIND, body)
