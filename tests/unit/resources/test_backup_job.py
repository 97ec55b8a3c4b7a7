"""The backup Job (pure builder)."""

from __future__ import annotations

import json

from etcd_operator.api.backup import parse_backup
from etcd_operator.backup import contract
from etcd_operator.resources.backup_job import BackupJobInputs, backup_job

S3 = {"bucket": "backups", "credentialsSecretName": "s3-keys", "endpointURL": "http://s3:9000"}


def _job(destination: dict[str, object], **inputs: object) -> dict[str, object]:
    backup = parse_backup(
        {
            "metadata": {"name": "nightly", "namespace": "ns", "uid": "u-1"},
            "spec": {"clusterName": "demo", "destination": destination, "backoffLimit": 4},
        }
    )
    given = BackupJobInputs(
        image="op:1",
        endpoints=("https://demo-0.demo.ns.svc:2379",),
        destination="{}",
        **inputs,  # type: ignore[arg-type]
    )
    body: dict[str, object] = backup_job(backup, given).to_dict()
    return body


def test_the_job_is_owned_by_the_backup_and_retries_within_its_backoff_limit() -> None:
    job = _job({"s3": S3})
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == "nightly-backup"  # type: ignore[index]
    (owner,) = meta["ownerReferences"]  # type: ignore[index]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("EtcdBackup", "u-1", True)
    assert spec["backoffLimit"] == 4  # type: ignore[index]
    (rule,) = spec["podFailurePolicy"]["rules"]  # type: ignore[index]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["values"] == [contract.PERMANENT_EXIT_CODE]


def test_the_pod_is_restricted_without_api_access_and_secrets_come_as_files() -> None:
    job = _job({"s3": S3}, tls_secret="demo-operator-tls", root_secret="demo-root")
    pod = job["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"] == ["backup"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePath"] == contract.RESULT_PATH
    secrets = {v["secret"]["secretName"] for v in pod["volumes"]}
    assert secrets == {"demo-operator-tls", "demo-root", "s3-keys"}
    mounts = {m["mountPath"]: m.get("readOnly") for m in container["volumeMounts"]}
    assert mounts == {contract.TLS_DIR: True, contract.ROOT_DIR: True, contract.S3_DIR: True}
    assert all("valueFrom" not in e for e in container["env"])  # no secret in the env
    labels = job["spec"]["template"]["metadata"]["labels"]  # type: ignore[index]
    assert labels["app.kubernetes.io/component"] == "backup"
    assert labels["app.kubernetes.io/instance"] == "demo"
    assert json.dumps(job).count("password") == 0


def test_a_volume_destination_mounts_the_claim() -> None:
    pod = _job({"volume": {"claimName": "keep", "path": "etcd"}})["spec"]["template"]["spec"]  # type: ignore[index]
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "keep"}
    assert pod["containers"][0]["volumeMounts"] == [
        {"mountPath": contract.VOLUME_DIR, "name": "destination"}
    ]
