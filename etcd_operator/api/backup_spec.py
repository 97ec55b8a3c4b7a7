"""`EtcdBackup.spec` (v1alpha1): which cluster to snapshot and where the snapshot goes.

The destination shapes (`S3Destination`, `VolumeDestination`) are shared by whatever reads a
snapshot back (EtcdRestore's source is the same shape plus the object's key).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.cluster import CLUSTER_NAME_PATTERN, MAX_CLUSTER_NAME_LENGTH
from etcd_operator.api.cluster_spec import ResourceRequirements
from etcd_operator.api.common import (
    OBJECT_NAME_PATTERN,
    ApiModel,
    FreeForm,
    RetentionPolicy,
    cel,
    validations,
)

# A relative path inside a claim or bucket: no leading "/", no ".." segment.
RELATIVE_PATH_PATTERN = r"^$|^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?$"
_NO_DOTDOT = cel("!self.matches('(^|/)[.][.](/|$)')", "must not contain a '..' segment")


class ServerSideEncryption(ApiModel):
    """Encryption at rest the store applies to the snapshot and its manifest."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.kmsKeyID) || self.algorithm == 'aws:kms'",
                "kmsKeyID goes only with algorithm aws:kms",
            )
        )
    )

    algorithm: Literal["AES256", "aws:kms"] = Field(
        description="AES256 (keys managed by the store) or aws:kms (a KMS key)."
    )
    kms_key_id: str | None = Field(
        default=None,
        alias="kmsKeyID",
        max_length=2048,
        description="The KMS key for aws:kms; unset: the store's default KMS key.",
    )


class S3Destination(ApiModel):
    """An S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph RGW...)."""

    bucket: str = Field(
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
        description="The bucket; it must exist.",
    )
    prefix: str = Field(
        default="",
        max_length=512,
        pattern=RELATIVE_PATH_PATTERN,
        description=(
            "Key prefix: the snapshot is `<prefix>/<namespace>/<cluster>/<backup>-<time>.db`, "
            "its manifest the same key plus `.json`."
        ),
        json_schema_extra=validations(_NO_DOTDOT),
    )
    endpoint_url: str | None = Field(
        default=None,
        alias="endpointURL",
        max_length=2048,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="The store's URL, e.g. https://minio.storage.svc:9000; unset: AWS S3.",
    )
    region: str | None = Field(
        default=None, max_length=64, description="Region of the bucket (AWS: required)."
    )
    credentials_secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "Secret in the backup's namespace with the keys `accessKeyID` and "
            "`secretAccessKey`; mounted into the backup pod only."
        ),
    )
    force_path_style: bool = Field(
        default=False,
        description="Address the bucket in the path (`<endpoint>/<bucket>/<key>`), "
        "as most S3-compatible stores need, instead of a virtual host.",
    )
    server_side_encryption: ServerSideEncryption | None = Field(
        default=None, description="Ask the store to encrypt the objects at rest."
    )


class VolumeDestination(ApiModel):
    """A directory on a PersistentVolumeClaim, mounted into the backup pod."""

    claim_name: str = Field(
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description="The claim, in the backup's namespace; it must exist.",
    )
    path: str = Field(
        default="",
        max_length=512,
        pattern=RELATIVE_PATH_PATTERN,
        description="Directory inside the claim; the snapshot is "
        "`<path>/<cluster>/<backup>-<time>.db` there, its manifest beside it (`.json`).",
        json_schema_extra=validations(_NO_DOTDOT),
    )


class BackupDestination(ApiModel):
    """Exactly one of `s3` and `volume`."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.s3) != has(self.volume)",
                "destination needs exactly one of s3 and volume",
                reason="FieldValueInvalid",
            )
        )
    )

    s3: S3Destination | None = Field(default=None, description="An S3-compatible bucket.")
    volume: VolumeDestination | None = Field(default=None, description="A directory on a PVC.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.s3 is None) == (self.volume is None):
            raise ValueError("destination needs exactly one of s3 and volume")
        return self


class BackupPodTemplate(ApiModel):
    """What the operator copies into the backup Job's pod."""

    labels: dict[str, str] | None = Field(default=None, description="Extra pod labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Extra pod annotations.")
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Resources of the backup container (default: requests 50m CPU, "
        "128Mi memory; limit 256Mi memory).",
    )
    node_selector: dict[str, str] | None = Field(default=None, description="Pod node selector.")
    tolerations: list[FreeForm] | None = Field(
        default=None, description="Pod tolerations (core/v1 Toleration)."
    )


class EtcdBackupSpec(ApiModel):
    """A one-shot backup of an EtcdCluster in the same namespace. Immutable."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self == oldSelf", "spec is immutable: create a new EtcdBackup instead")
        )
    )

    cluster_name: str = Field(
        max_length=MAX_CLUSTER_NAME_LENGTH,
        pattern=CLUSTER_NAME_PATTERN,
        description="The EtcdCluster to back up, in the same namespace.",
    )
    destination: BackupDestination = Field(description="Where the snapshot goes.")
    pod_template: BackupPodTemplate | None = Field(
        default=None, description="Resources and placement of the backup pod."
    )
    backoff_limit: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Attempts after the first before the backup is Failed (the Job's "
        "backoffLimit).",
    )
    deletion_policy: RetentionPolicy = Field(
        default="Retain",
        description="Retain (default): deleting the EtcdBackup leaves the snapshot in the "
        "store. Delete: the stored snapshot and its manifest are removed first (by a short Job "
        "under a finalizer; a snapshot already gone counts as removed).",
    )
