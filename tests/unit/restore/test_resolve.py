"""An EtcdRestore's source resolved to a location: directly, or from an EtcdBackup's record."""

from __future__ import annotations

from typing import Any

from etcd_operator.api.backup import parse_backup
from etcd_operator.api.restore import RestoreSource
from etcd_operator.restore.resolve import Unresolved, resolve

SHA = "d" * 64


def _backup(destination: dict[str, Any], status: dict[str, Any] | None) -> Any:
    return parse_backup(
        {
            "metadata": {"name": "nightly", "namespace": "ns"},
            "spec": {"clusterName": "c", "destination": destination},
            "status": status,
        }
    )


SOURCE = RestoreSource.model_validate({"backup": {"name": "nightly"}})
S3 = {
    "s3": {
        "bucket": "snaps",
        "prefix": "etcd",
        "endpointURL": "http://10.0.0.1:8333",
        "region": "us-east-1",
        "forcePathStyle": True,
        "credentialsSecretName": "keys",
    }
}


def test_a_succeeded_s3_backup_resolves_to_its_object_and_sha256() -> None:
    status = {"phase": "Succeeded", "location": "s3://snaps/etcd/ns/c/n.db", "sha256": SHA}
    location = resolve(SOURCE, _backup(S3, status))
    assert not isinstance(location, Unresolved)
    assert location.s3 is not None and location.s3.key == "etcd/ns/c/n.db"
    assert location.s3.credentials_secret_name == "keys" and location.s3.force_path_style
    assert location.sha256 == SHA


def test_a_succeeded_claim_backup_resolves_to_its_file() -> None:
    volume = {"volume": {"claimName": "backups", "path": "etcd"}}
    status = {"phase": "Succeeded", "location": "file:///backup/etcd/c/n.db", "sha256": SHA}
    location = resolve(SOURCE, _backup(volume, status))
    assert not isinstance(location, Unresolved)
    assert location.volume is not None
    assert (location.volume.claim_name, location.volume.path) == ("backups", "etcd/c/n.db")


def test_a_running_backup_is_waited_for_and_a_failed_or_missing_one_refused() -> None:
    running = resolve(SOURCE, _backup(S3, {"phase": "Running"}))
    assert isinstance(running, Unresolved) and running.pending
    failed = resolve(SOURCE, _backup(S3, {"phase": "Failed"}))
    assert isinstance(failed, Unresolved) and not failed.pending
    assert failed.reason == "BackupFailed"
    missing = resolve(SOURCE, None)
    assert isinstance(missing, Unresolved) and missing.reason == "BackupNotFound"
