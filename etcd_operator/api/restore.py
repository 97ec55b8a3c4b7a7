"""`EtcdRestore` (v1alpha1): create a new EtcdCluster whose initial members start from a
verified snapshot.

The spec is immutable: a restore is one operation, recorded in status; another restore is
another object.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.cluster import (
    CLUSTER_NAME_PATTERN,
    MAX_CLUSTER_NAME_LENGTH,
    ObjectMeta,
    parse_body,
)
from etcd_operator.api.cluster_spec import EtcdClusterSpec
from etcd_operator.api.common import ApiModel, Condition, cel, validations
from etcd_operator.api.snapshot_source import (
    SHA256_PATTERN,
    S3SnapshotSource,
    SnapshotLocation,
    VolumeSnapshotSource,
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
    volume: VolumeSnapshotSource | None = Field(
        default=None, description="A snapshot file on a PersistentVolumeClaim."
    )
    s3: S3SnapshotSource | None = Field(
        default=None, description="A snapshot object in an S3-compatible store."
    )
    sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
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


class EtcdRestoreStatus(ApiModel):
    """What the restore did."""

    model_config = ConfigDict(extra="ignore")

    phase: RestorePhase = Field(default=RestorePhase.PENDING, description="Where the restore is.")
    observed_generation: int | None = Field(default=None, description="The generation acted on.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Verified and Restored, with reasons."
    )
    cluster_name: str | None = Field(default=None, description="The EtcdCluster created.")
    revision: int | None = Field(
        default=None,
        description="The etcd revision the snapshot holds; the cluster serves at least this.",
        json_schema_extra={"format": "int64"},
    )
    sha256: str | None = Field(
        default=None, pattern=SHA256_PATTERN, description="sha256 of the verified snapshot."
    )
    size: int | None = Field(
        default=None,
        description="Size of the snapshot in bytes.",
        json_schema_extra={"format": "int64"},
    )
    completion_time: datetime | None = Field(
        default=None, description="When the restore succeeded or failed."
    )


class RestoreMeta(ObjectMeta):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=253)


class EtcdRestore(ApiModel):
    """An EtcdRestore custom resource, typed."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["etcd.operator.io/v1alpha1"] = "etcd.operator.io/v1alpha1"
    kind: Literal["EtcdRestore"] = "EtcdRestore"
    metadata: RestoreMeta
    spec: EtcdRestoreSpec
    status: EtcdRestoreStatus = Field(default_factory=EtcdRestoreStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace


def parse_restore(body: Mapping[str, Any]) -> EtcdRestore:
    """A whole kopf body -> EtcdRestore, or InvalidSpecError naming each bad field."""
    return parse_body(EtcdRestore, KIND, body)
