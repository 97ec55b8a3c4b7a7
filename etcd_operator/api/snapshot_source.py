"""Where a snapshot to restore is read from (shared by EtcdRestore and EtcdCluster's
`spec.bootstrap.restore`).

A file on a PersistentVolumeClaim (`volume`) or an object in an S3-compatible store (`s3`, the
shape of EtcdBackup's S3 destination with the object's key instead of a prefix). EtcdRestore
also takes `backup`: an EtcdBackup, resolved to one of these by the controller.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.common import (
    OBJECT_NAME_PATTERN,
    SUBDOMAIN_PATTERN,
    ApiModel,
    Sha256,
    cel,
    validations,
)

# Relative, no `..` segment, no empty segment: the file stays inside the claim.
_PATH_PATTERN = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


class VolumeSnapshotSource(ApiModel):
    """A snapshot file on a PersistentVolumeClaim of the namespace, mounted read-only."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!self.path.split('/').exists(p, p == '..' || p == '.')",
                "volume.path may not contain '.' or '..' segments",
            ),
        )
    )

    claim_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SUBDOMAIN_PATTERN,
        description="The PersistentVolumeClaim holding the snapshot.",
    )
    path: str = Field(
        min_length=1,
        max_length=1024,
        pattern=_PATH_PATTERN,
        description="Path of the snapshot file relative to the claim's root, e.g. backups/a.db.",
    )

    @model_validator(mode="after")
    def _inside_claim(self) -> Self:
        if any(part in (".", "..") for part in self.path.split("/")):
            raise ValueError("volume.path may not contain '.' or '..' segments")
        return self


class S3SnapshotSource(ApiModel):
    """An object in an S3-compatible bucket (as EtcdBackup's S3 destination, plus the key)."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$", description="Bucket."
    )
    key: str = Field(
        min_length=1,
        max_length=1024,
        pattern=_PATH_PATTERN,
        description="The snapshot object's key, e.g. etcd/ns/cluster/backup-20261130T040000Z.db.",
    )
    endpoint_url: str | None = Field(
        default=None,
        alias="endpointURL",
        max_length=2048,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="The store's URL; unset: AWS S3.",
    )
    region: str | None = Field(default=None, max_length=64, description="Region of the bucket.")
    credentials_secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "Secret of the namespace with `accessKeyID` and `secretAccessKey`, mounted into the"
            " pods that read the snapshot only."
        ),
    )
    force_path_style: bool = Field(
        default=False,
        description="Address the bucket in the path, as most S3-compatible stores need.",
    )


# The two places a snapshot is read from, as EtcdRestore's source and a cluster's
# bootstrap.restore both name them.
VolumeField = Annotated[
    VolumeSnapshotSource | None, Field(description="A snapshot file on a PersistentVolumeClaim.")
]
S3Field = Annotated[
    S3SnapshotSource | None, Field(description="A snapshot object in an S3-compatible store.")
]


class SnapshotLocation(ApiModel):
    """One snapshot and, optionally, the sha256 it must have."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.volume) != has(self.s3)", "name exactly one snapshot source: volume or s3"
            ),
        )
    )

    volume: VolumeField = None
    s3: S3Field = None
    sha256: Sha256 | None = Field(
        default=None,
        description=(
            "Hex sha256 of the whole snapshot file (etcd's own hash trailer included), as an "
            "EtcdBackup records it. Unset: only etcd's own integrity check is made."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.volume is None) == (self.s3 is None):
            raise ValueError("name exactly one snapshot source: volume or s3")
        return self

    def describe(self) -> str:
        """Where the snapshot is, for messages (never a credential)."""
        if self.s3 is not None:
            return f"s3://{self.s3.bucket}/{self.s3.key}"
        assert self.volume is not None
        return f"claim {self.volume.claim_name} path {self.volume.path}"


class BootstrapSpec(ApiModel):
    """How the initial members start: empty (the default) or from a snapshot."""

    restore: SnapshotLocation | None = Field(
        default=None,
        description=(
            "Start every initial member from this snapshot (`etcdutl snapshot restore` before "
            "etcd first starts, with a fresh cluster token). Only the initial members are "
            "restored; members added later join as learners and copy the data from the "
            "cluster. Users, roles and whether auth is enabled come with the snapshot."
        ),
    )
