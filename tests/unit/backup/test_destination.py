"""Where a backup goes, and the Job's result message (pure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import PurePosixPath

from etcd_operator.api.backup import parse_backup
from etcd_operator.backup.contract import PERMANENT_EXIT_CODE, Result
from etcd_operator.backup.destination import from_env, location_of, to_env
from etcd_operator.objectstore import Encryption, FileLocation, S3Credentials, S3Location


def _backup(destination: dict[str, object]) -> object:
    return parse_backup(
        {
            "metadata": {
                "name": "nightly",
                "namespace": "ns",
                "uid": "u",
                "creationTimestamp": "2026-03-04T05:06:07Z",
            },
            "spec": {"clusterName": "demo", "destination": destination},
        }
    )


def test_s3_keys_carry_prefix_namespace_cluster_name_and_creation_time() -> None:
    s3 = {
        "bucket": "backups",
        "prefix": "etcd/",
        "endpointURL": "http://s3:9000",
        "forcePathStyle": True,
        "serverSideEncryption": {"algorithm": "aws:kms", "kmsKeyID": "k1"},
    }
    location = location_of(_backup({"s3": s3}))  # type: ignore[arg-type]
    assert location == S3Location(
        "backups",
        "etcd/ns/demo/nightly-20260304T050607Z.db",
        "http://s3:9000",
        None,
        True,
        None,
        Encryption("aws:kms", "k1"),
    )
    assert location.uri == "s3://backups/etcd/ns/demo/nightly-20260304T050607Z.db"
    keys = S3Credentials("AK", "SECRET")
    assert from_env(to_env(location), keys) == S3Location(
        "backups", location.key, "http://s3:9000", None, True, keys, Encryption("aws:kms", "k1")
    )
    assert "SECRET" not in to_env(from_env(to_env(location), keys))


def test_a_volume_snapshot_goes_below_the_mounted_claim() -> None:
    location = location_of(_backup({"volume": {"claimName": "c", "path": "etcd"}}))  # type: ignore[arg-type]
    assert location == FileLocation(PurePosixPath("/backup/etcd/demo/nightly-20260304T050607Z.db"))
    assert from_env(to_env(location), None) == location


def test_results_round_trip_through_the_termination_message_and_say_how_to_exit() -> None:
    result = Result("Failed", "InvalidAccessKeyId", "x" * 5000)
    parsed = Result.from_json(result.to_json())
    assert parsed is not None and parsed.reason == "InvalidAccessKeyId"
    assert len(result.to_json()) < 4096
    assert result.exit_code == PERMANENT_EXIT_CODE
    assert Result("Failed", "EtcdUnavailable").exit_code == 1
    assert Result("Succeeded").exit_code == 0
    assert Result.from_json("Traceback (most recent call last):") is None
    assert Result.from_json('{"outcome": "Maybe"}') is None


def test_the_jobs_secret_key_names_are_the_operators() -> None:
    from etcd_operator.backup import contract
    from etcd_operator.resources.root_secret import PASSWORD_KEY, ROOT_USER
    from etcd_operator.tls.material import CA_CERT, TLS_CERT, TLS_KEY

    assert (contract.ROOT_PASSWORD_FILE, contract.ROOT_USER) == (PASSWORD_KEY, ROOT_USER)
    assert (contract.TLS_CA_FILE, contract.TLS_CERT_FILE, contract.TLS_KEY_FILE) == (
        CA_CERT,
        TLS_CERT,
        TLS_KEY,
    )


def test_the_backup_job_starts_without_the_api_models_and_resource_builders() -> None:
    # Its start is part of every backup's time: these imports cost most of it.
    code = (
        "import sys, etcd_operator.backup.run; "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'etcd_operator.api', 'etcd_operator.resources', 'lightkube', 'kopf', 'cryptography'"
        "))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
