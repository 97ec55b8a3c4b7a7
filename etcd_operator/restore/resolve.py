"""Which snapshot an EtcdRestore reads: the location it names, or the one an EtcdBackup
recorded (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from etcd_operator.api.backup import BackupPhase, EtcdBackup
from etcd_operator.api.restore import RestoreSource
from etcd_operator.api.snapshot_source import (
    S3SnapshotSource,
    SnapshotLocation,
    VolumeSnapshotSource,
)
from etcd_operator.backup.contract import VOLUME_DIR


@dataclass(frozen=True, slots=True)
class Unresolved:
    """No location (yet): `pending` while the EtcdBackup runs; else why it never will be."""

    pending: bool
    reason: str
    message: str


def resolve(source: RestoreSource, backup: EtcdBackup | None) -> SnapshotLocation | Unresolved:
    """The location to read; `backup` is the named EtcdBackup as read now (None: missing)."""
    direct = source.location()
    if direct is not None:
        return direct
    assert source.backup is not None
    name = source.backup.name
    if backup is None:
        return Unresolved(False, "BackupNotFound", f"EtcdBackup {name} does not exist")
    status = backup.status
    phase = status.phase if status else None
    if phase is BackupPhase.FAILED:
        return Unresolved(False, "BackupFailed", f"EtcdBackup {name} failed; nothing to restore")
    if phase is not BackupPhase.SUCCEEDED or status is None or not status.location:
        return Unresolved(True, "WaitingForBackup", f"waiting for EtcdBackup {name} to succeed")
    sha256 = source.sha256 or status.sha256
    destination = backup.spec.destination
    location = status.location
    if destination.s3 is not None and location.startswith(f"s3://{destination.s3.bucket}/"):
        s3 = destination.s3
        return SnapshotLocation(
            s3=S3SnapshotSource.model_validate(
                {
                    "bucket": s3.bucket,
                    "key": location.removeprefix(f"s3://{s3.bucket}/"),
                    "endpointURL": s3.endpoint_url,
                    "region": s3.region,
                    "credentialsSecretName": s3.credentials_secret_name,
                    "forcePathStyle": s3.force_path_style,
                }
            ),
            sha256=sha256,
        )
    if destination.volume is not None and location.startswith("file://"):
        path = PurePosixPath(location.removeprefix("file://"))
        if path.is_relative_to(VOLUME_DIR):
            return SnapshotLocation(
                volume=VolumeSnapshotSource(
                    claim_name=destination.volume.claim_name,
                    path=str(path.relative_to(VOLUME_DIR)),
                ),
                sha256=sha256,
            )
    return Unresolved(
        False, "BackupUnreadable", f"EtcdBackup {name} records a location this operator cannot read"
    )
