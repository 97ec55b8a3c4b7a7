"""`EtcdRestore` (v1alpha1): create a new EtcdCluster whose initial members start from a
verified snapshot.

The spec is immutable: a restore is one operation, recorded in status; another restore is
another object.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.cluster import (
    CLUSTER_NAME_PATTERN,
    MAX_CLUSTER_NAME_LENGTH,
    parse_body,
)
from etcd_operator.api.cluster_spec import EtcdClusterSpec
from etcd_operator.api.common import (
    ApiModel,
    Condition,
    Resource,
    Sha256,
    cel,
    conditions_field,
    validations,
)
from etcd_operator.api.duration import DURATION_PATTERN, parse_duration
from etcd_operator.api.snapshot_source import (
    S3Field,
    SnapshotLocation,
    VolumeField,
)

KIND = "EtcdRestore"
PLURAL = "etcdrestores"
SINGULAR = "etcdrestore"
SHORT_NAMES = ("etcdr",)


class BackupRef(ApiModel):
    """An EtcdBackup of the namespace."""

    name: str = Field(min_length=1, max_length=253, description="The EtcdBackup's name.")


class RestoreSource(ApiModel):
    """Exactly one of `backup`, `volume` and `s3`, and optionally the sha256 it must have."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.backup) ? 1 : 0) + (has(self.volume) ? 1 : 0) + (has(self.s3) ? 1 : 0)"
                " == 1",
                "name exactly one snapshot source: backup, volume or s3",
            ),
        )
    )

    backup: BackupRef | None = Field(
        default=None,
        description=(
            "A Succeeded EtcdBackup: its stored snapshot, checked against the sha256 it recorded."
        ),
    )
    volume: VolumeField = None
    s3: S3Field = None
    sha256: Sha256 | None = Field(
        default=None,
        description=(
            "Hex sha256 of the whole snapshot file. Unset: an EtcdBackup's recorded one, else "
            "only etcd's own integrity check is made."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if sum(x is not None for x in (self.backup, self.volume, self.s3)) != 1:
            raise ValueError("name exactly one snapshot source: backup, volume or s3")
        return self

    def location(self) -> SnapshotLocation | None:
        """The snapshot's location when named directly (None for an EtcdBackup)."""
        if self.backup is not None:
            return None
        return SnapshotLocation(volume=self.volume, s3=self.s3, sha256=self.sha256)

    def describe(self) -> str:
        if self.backup is not None:
            return f"EtcdBackup {self.backup.name}"
        location = self.location()
        assert location is not None
        return location.describe()


class RestoreCluster(ApiModel):
    """The EtcdCluster the restore creates."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.spec.bootstrap) || !has(self.spec.bootstrap.restore)",
                "cluster.spec.bootstrap.restore is set by the restore from spec.source",
            ),
        )
    )

    name: str = Field(
        max_length=MAX_CLUSTER_NAME_LENGTH,
        pattern=CLUSTER_NAME_PATTERN,
        description="Name of the EtcdCluster to create; no EtcdCluster of that name may exist.",
    )
    spec: EtcdClusterSpec = Field(
        default_factory=EtcdClusterSpec,
        description="Its spec, as in an EtcdCluster (bootstrap.restore is filled in).",
        json_schema_extra={"default": {}},
    )

    @model_validator(mode="after")
    def _no_restore_given(self) -> Self:
        if self.spec.bootstrap.restore is not None:
            raise ValueError(
                "cluster.spec.bootstrap.restore is set by the restore from spec.source"
            )
        return self


DEFAULT_READY_TIMEOUT = "10m"


class EtcdRestoreSpec(ApiModel):
    """What to restore and into which new cluster. Immutable."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("self == oldSelf", "spec is immutable")),
    )

    source: RestoreSource = Field(description="The snapshot to restore.")
    cluster: RestoreCluster = Field(description="The EtcdCluster to create from it.")
    drill: bool = Field(
        default=False,
        description="Restore into a throwaway one-member cluster, check it, delete it.",
    )
    ready_timeout: str = Field(
        default=DEFAULT_READY_TIMEOUT,
        pattern=DURATION_PATTERN,
        description=(
            "How long the created cluster may take to become ready, from its creation (e.g."
            " 10m, 1h). Past it the restore fails with ClusterNotReady; the cluster is left"
            " for inspection (a drill's throwaway cluster is deleted)."
        ),
    )

    @property
    def ready_within(self) -> timedelta:
        return parse_duration(self.ready_timeout)


class RestorePhase(StrEnum):
    PENDING = "Pending"
    VERIFYING = "Verifying"
    RESTORING = "Restoring"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class RestoreConditionType(StrEnum):
    # The snapshot passed (True) or failed (False) the checks.
    VERIFIED = "Verified"
    # The cluster serves the snapshot's data (True), or the restore gave up (False).
    RESTORED = "Restored"
    # A drill's throwaway cluster served the expected revision and key count (True), or not.
    DRILL_PASSED = "DrillPassed"


class DrillResult(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"


class DrillStatus(ApiModel):
    """What a restore drill expected and found. `result` is written once the throwaway
    cluster was checked (or could not be), before it is deleted."""

    model_config = ConfigDict(extra="ignore")

    result: DrillResult | None = Field(
        default=None, description="Passed or Failed; unset: under way."
    )
    reason: str | None = Field(default=None, description="Why, in CamelCase.")
    message: str | None = Field(default=None, description="What was checked, or what failed.")
    source_cluster: str | None = Field(
        default=None,
        description="The cluster the EtcdBackup was taken of (unset for a location source).",
    )
    expected_revision: int | None = Field(
        default=None,
        description="The revision the backup recorded (else the snapshot's own).",
        json_schema_extra={"format": "int64"},
    )
    expected_keys: int | None = Field(
        default=None,
        description="Keys the backup counted at it; unset: the revision alone is checked.",
        json_schema_extra={"format": "int64"},
    )
    served_revision: int | None = Field(
        default=None,
        description="The revision the throwaway cluster served.",
        json_schema_extra={"format": "int64"},
    )
    served_keys: int | None = Field(
        default=None,
        description="Keys the throwaway cluster held at the expected revision.",
        json_schema_extra={"format": "int64"},
    )
    start_time: datetime | None = Field(default=None, description="When the drill began.")
    completion_time: datetime | None = Field(
        default=None, description="When the result was recorded."
    )


class EtcdRestoreStatus(ApiModel):
    """What the restore did."""

    model_config = ConfigDict(extra="ignore")

    phase: RestorePhase = Field(default=RestorePhase.PENDING, description="Where the restore is.")
    observed_generation: int | None = Field(default=None, description="The generation acted on.")
    conditions: list[Condition] = conditions_field(
        "Verified and Restored, with reasons.", empty_list=True
    )
    cluster_name: str | None = Field(default=None, description="The EtcdCluster created.")
    revision: int | None = Field(
        default=None,
        description="The etcd revision the snapshot holds; the cluster serves at least this.",
        json_schema_extra={"format": "int64"},
    )
    sha256: Sha256 | None = Field(default=None, description="sha256 of the verified snapshot.")
    size: int | None = Field(
        default=None,
        description="Size of the snapshot in bytes.",
        json_schema_extra={"format": "int64"},
    )
    completion_time: datetime | None = Field(
        default=None, description="When the restore succeeded or failed."
    )
    drill: DrillStatus | None = Field(default=None, description="A drill's checks and result.")


class EtcdRestore(Resource):
    """An EtcdRestore custom resource, typed."""

    kind: Literal["EtcdRestore"] = "EtcdRestore"
    spec: EtcdRestoreSpec
    status: EtcdRestoreStatus = Field(default_factory=EtcdRestoreStatus)


def parse_restore(body: Mapping[str, Any]) -> EtcdRestore:
    """A whole kopf body -> EtcdRestore, or InvalidSpecError naming each bad field."""
    return parse_body(EtcdRestore, KIND, body)
