"""Where a snapshot to restore is read from (shared by EtcdRestore and EtcdCluster's
`spec.bootstrap.restore`).

Only the file source (`volume`: a path on a PersistentVolumeClaim) exists so far; the S3 source
of EtcdBackup's destinations joins as a sibling field, with the same one-of rule.
"""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.common import ApiModel, cel, validations

SHA256_PATTERN = r"^[0-9a-f]{64}$"
# A claim's name: a DNS-1123 subdomain.
_CLAIM_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
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
        pattern=_CLAIM_NAME_PATTERN,
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


class SnapshotLocation(ApiModel):
    """One snapshot and, optionally, the sha256 it must have."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.volume)", "name exactly one snapshot source: volume"),
        )
    )

    volume: VolumeSnapshotSource | None = Field(
        default=None, description="A snapshot file on a PersistentVolumeClaim."
    )
    sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        description=(
            "Hex sha256 of the whole snapshot file (etcd's own hash trailer included), as an "
            "EtcdBackup records it. Unset: only etcd's own integrity check is made."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.volume is None:
            raise ValueError("name exactly one snapshot source: volume")
        return self

    def describe(self) -> str:
        """Where the snapshot is, for messages (never a credential)."""
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
