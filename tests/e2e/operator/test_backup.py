"""EtcdBackup against localcluster: real etcd members, a real S3 server (SeaweedFS), a real
claim; the backup runs in a Job of the operator's image and reports through its pod."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import (
    PersistentVolumeClaimSpec,
    VolumeResourceRequirements,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod, Secret
from lightkube.types import PatchType
from prometheus_client.parser import text_string_to_metric_families

from etcd_operator.etcd import EtcdClient, EtcdConfig
from etcd_operator.kube import EtcdBackupResource
from harness.clusters import (
    client_tls,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_urls,
    root_credentials,
    scratch_namespace,
)
from harness.operator_process import OperatorProcess
from harness.s3server import REGION, S3Server
from harness.waits import settled, wait_events
from localcluster import faults
from localcluster.cluster import LocalCluster
from localcluster.testing.pods import etcd_versions

pytestmark = pytest.mark.e2e

BUCKET = "etcd-backups"
KEYS = 10_000


async def _create_backup(
    kube: AsyncClient, namespace: str, name: str, cluster: str, destination: dict[str, Any],
    backoff_limit: int = 2,
) -> None:  # fmt: skip
    body = EtcdBackupResource(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec={"clusterName": cluster, "destination": destination, "backoffLimit": backoff_limit},
    )
    await kube.create(body)


async def _backup(kube: AsyncClient, namespace: str, name: str) -> dict[str, Any]:
    got = await kube.get(EtcdBackupResource, name, namespace=namespace)
    body: dict[str, Any] = got.to_dict()  # type: ignore[no-untyped-call]
    return body


async def _final(
    kube: AsyncClient, namespace: str, name: str, timeout: float = 180
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await _backup(kube, namespace, name)
        phase = (body.get("status") or {}).get("phase")
        return body if phase in ("Succeeded", "Failed") else None

    return await eventually(probe, timeout, f"backup {namespace}/{name} final")


def _s3_destination(s3: S3Server, secret: str = "s3-keys") -> dict[str, Any]:
    return {
        "s3": {
            "bucket": BUCKET,
            "prefix": "e2e",
            "endpointURL": s3.pod_endpoint,
            "region": REGION,
            "forcePathStyle": True,
            "credentialsSecretName": secret,
        }
    }


async def _s3_secret(
    kube: AsyncClient, namespace: str, name: str, key_id: str, secret: str
) -> None:
    data = {
        "accessKeyID": base64.b64encode(key_id.encode()).decode(),
        "secretAccessKey": base64.b64encode(secret.encode()).decode(),
    }
    await kube.create(Secret(metadata=ObjectMeta(name=name, namespace=namespace), data=data))


async def _fill(endpoints: tuple[str, ...], n: int) -> int:
    """Write `n` keys, 100 at a time; generous deadlines: the machine is shared."""
    revision = 0
    config = EtcdConfig(endpoints=endpoints, dial_timeout=5.0, request_timeout=30.0)
    async with EtcdClient(config) as etcd:
        for start in range(0, n, 100):
            revisions = await asyncio.gather(
                *(
                    etcd.put(f"/e2e/{i:05d}", f"value-{i}")
                    for i in range(start, min(n, start + 100))
                )
            )
            revision = max(revision, *revisions)
    return revision


def _key(location: str) -> str:
    return location.removeprefix(f"s3://{BUCKET}/")


def _snapshot_status(local: LocalCluster, version: str, path: Path) -> dict[str, Any]:
    """etcd's own view of a snapshot file (`etcdutl snapshot status`)."""
    bin_dir = etcd_versions(local.state)[version]
    out = subprocess.run(
        [str(bin_dir / "etcdutl"), "snapshot", "status", str(path), "-w", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    status: dict[str, Any] = json.loads(out)
    return status


async def _posted(kube: AsyncClient, namespace: str, name: str, kind: str, reason: str) -> None:
    """Until EtcdBackup `name` has a `kind` ("Normal"/"Warning") Event with `reason`: kopf
    posts Events from its own queue, so they may come after the status a test waited for."""
    await wait_events(
        kube,
        namespace,
        lambda e: (
            e.involvedObject.kind == "EtcdBackup"
            and e.type == kind
            and (not reason or e.reason == reason)
        ),
        f"a {kind} {reason or 'any'} Event about EtcdBackup {name}",
        involved=name,
    )


@pytest_asyncio.fixture(scope="module")
async def plain(
    kube: AsyncClient, operator: OperatorProcess, s3_server: S3Server
) -> AsyncIterator[tuple[str, int]]:
    """A 3-member cluster `plain` holding 10,000 keys, and its revision after the writes."""
    s3_server.create_bucket(BUCKET)
    async with scratch_namespace(
        kube, "backup", {"pod-security.kubernetes.io/enforce": "restricted"}
    ) as ns:
        await create_ready_cluster(kube, ns, "plain", {"replicas": 3})
        revision = await _fill(member_urls(ns, "plain", range(3)), KEYS)
        await _s3_secret(kube, ns, "s3-keys", s3_server.access_key, s3_server.secret_key)
        yield ns, revision


async def test_backups_to_s3_and_to_a_claim_hold_every_key_with_matching_sha256(
    kube: AsyncClient, plain: tuple[str, int], s3_server: S3Server, localcluster: LocalCluster,
    tmp_path: Path, operator_metrics_url: str,
) -> None:  # fmt: skip
    ns, revision = plain
    claim = PersistentVolumeClaim(
        metadata=ObjectMeta(name="backups", namespace=ns),
        spec=PersistentVolumeClaimSpec(
            accessModes=["ReadWriteOnce"],
            resources=VolumeResourceRequirements(requests={"storage": "1Gi"}),
        ),
    )
    await kube.create(claim)
    await _create_backup(kube, ns, "to-s3", "plain", _s3_destination(s3_server))
    await _create_backup(
        kube, ns, "to-pvc", "plain", {"volume": {"claimName": "backups", "path": "etcd"}}
    )
    cluster = await get_cluster(kube, ns, "plain")
    members = {m["name"] for m in cluster["status"]["members"]}

    s3_body = await _final(kube, ns, "to-s3")
    pvc_body = await _final(kube, ns, "to-pvc")
    for body in (s3_body, pvc_body):
        status = body["status"]
        assert status["phase"] == "Succeeded", status
        assert status["revision"] >= revision
        assert status["clusterID"] == cluster["status"]["clusterID"]
        assert status["clusterUID"] == cluster["metadata"]["uid"]
        assert status["etcdVersion"] == cluster["status"]["currentVersion"]
        assert status["member"] in members and status["member"] != cluster["status"]["leader"]
        assert status["size"] > KEYS * 10 and len(status["sha256"]) == 64
        assert status["startTime"] <= status["completionTime"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Complete"]["status"] == "True"
        assert conditions["Failed"]["status"] == "False"
    # What the "no backup in N hours" alert reads: the latest of the two, parsed.
    latest = max(
        datetime.fromisoformat(b["status"]["completionTime"]).timestamp()
        for b in (s3_body, pvc_body)
    )
    # Set after the status is written: it may lag the phase just seen.
    await settled(
        lambda: asyncio.to_thread(_last_backup_metric, operator_metrics_url, ns, "plain"),
        lambda value: value is not None and abs(value - latest) < 1,
        30,
        f"the last-backup metric at {latest}",
    )

    # S3: the object is what the status and the manifest say, and etcd reads it back.
    status = s3_body["status"]
    key = _key(status["location"])
    assert key.startswith(f"e2e/{ns}/plain/to-s3-") and key.endswith(".db")
    s3 = s3_server.client()
    data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key + ".json")["Body"].read())
    assert hashlib.sha256(data).hexdigest() == status["sha256"] == manifest["sha256"]
    assert len(data) == status["size"] == manifest["size"]
    assert manifest["revision"] == status["revision"]
    snapshot = tmp_path / "s3.db"
    snapshot.write_bytes(data)
    assert (
        _snapshot_status(localcluster, status["etcdVersion"], snapshot)["revision"]
        == status["revision"]
    )

    # The claim: a complete file and its manifest, nothing partial beside them.
    status = pvc_body["status"]
    inside = status["location"].removeprefix("file:///backup/")
    root = faults.volume_path(localcluster.state, ns, "backups")
    stored = root / inside
    names = sorted(p.name for p in stored.parent.iterdir())
    assert names == [stored.name, stored.name + ".json"]
    manifest = json.loads((stored.parent / (stored.name + ".json")).read_text())
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == status["sha256"] == manifest["sha256"]

    # The Job: owned by its backup, its pod without an API token; Events say what happened.
    job = await kube.get(Job, "to-s3-backup", namespace=ns)
    owners = job.metadata.ownerReferences or [] if job.metadata else []
    assert [(o.kind, o.name) for o in owners] == [("EtcdBackup", "to-s3")]
    pods = [
        p async for p in kube.list(Pod, namespace=ns, labels={"etcd.operator.io/backup": "to-s3"})
    ]
    assert pods and all(p.spec and p.spec.automountServiceAccountToken is False for p in pods)
    await _posted(kube, ns, "to-s3", "Normal", "JobCreated")
    await _posted(kube, ns, "to-s3", "Normal", "Succeeded")


def _last_backup_metric(url: str, namespace: str, cluster: str) -> float | None:
    """The cluster's one last-backup sample (None while there is none)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    values = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "etcd_operator_cluster_last_backup_timestamp_seconds"
        and s.labels == {"namespace": namespace, "name": cluster}
    ]
    assert len(values) <= 1, values
    return float(values[0]) if values else None


async def test_wrong_s3_credentials_fail_at_once_with_the_stores_reason(
    kube: AsyncClient, plain: tuple[str, int], s3_server: S3Server
) -> None:
    ns, _ = plain
    await _s3_secret(kube, ns, "wrong-keys", "AKNOTAKEY", "not-the-secret-value")
    await _create_backup(kube, ns, "denied", "plain", _s3_destination(s3_server, "wrong-keys"))
    body = await _final(kube, ns, "denied")
    status = body["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "InvalidAccessKeyId")
    assert "Traceback" not in failed["message"]
    # A reason no retry can fix fails the Job at once (podFailurePolicy), not after 3 tries.
    pods = [
        p async for p in kube.list(Pod, namespace=ns, labels={"etcd.operator.io/backup": "denied"})
    ]
    assert len(pods) == 1
    await _posted(kube, ns, "denied", "Warning", "InvalidAccessKeyId")
    assert "not-the-secret-value" not in json.dumps(body)


async def test_a_backup_while_a_member_is_down_comes_from_a_healthy_member(
    kube: AsyncClient, plain: tuple[str, int], s3_server: S3Server, localcluster: LocalCluster
) -> None:
    ns, _ = plain
    cluster = await get_cluster(kube, ns, "plain")
    leader = cluster["status"]["leader"]
    down = next(m["name"] for m in cluster["status"]["members"] if m["name"] != leader)
    faults.partition_pod(localcluster.state, ns, down)
    try:
        await _create_backup(kube, ns, "degraded", "plain", _s3_destination(s3_server))
        status = (await _final(kube, ns, "degraded"))["status"]
    finally:
        faults.heal_pod(localcluster.state, ns, down)
    assert status["phase"] == "Succeeded", status
    assert status["member"] not in (down, None)
    assert status.get("failedAttempts") in (None, 0)


async def test_a_member_killed_mid_stream_fails_the_attempt_cleanly_then_a_retry_succeeds(
    kube: AsyncClient, plain: tuple[str, int], s3_server: S3Server, localcluster: LocalCluster
) -> None:
    ns, _ = plain
    endpoints = member_urls(ns, "plain", range(3))
    config = EtcdConfig(endpoints=endpoints, dial_timeout=5.0, request_timeout=30.0)
    async with EtcdClient(config) as etcd:  # ~160 MiB: a stream of a few seconds
        blob = b"x" * (1024 * 1024)
        for i in range(160):
            await etcd.put(f"/big/{i:04d}", blob)
    await _create_backup(kube, ns, "interrupted", "plain", _s3_destination(s3_server), 3)

    async def serving_member() -> str | None:
        pods = [
            p
            async for p in kube.list(
                Pod, namespace=ns, labels={"etcd.operator.io/backup": "interrupted"}
            )
        ]
        for pod in pods:
            log = _pod_log(localcluster, ns, pod.metadata.name if pod.metadata else "")
            for line in log.splitlines():
                if line.startswith("backup: snapshot of member "):
                    return line.split()[4]
        return None

    member = await eventually(serving_member, 120, "the backup pod to pick a member", 0.05)
    faults.kill_container(localcluster.state, ns, member, "etcd")
    # While the killed attempt is failing, nothing complete-looking appears.
    s3 = s3_server.client()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"e2e/{ns}/plain/interrupted-")
    assert listed.get("Contents", []) == []
    body = await _final(kube, ns, "interrupted", timeout=300)
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["failedAttempts"] >= 1
    await _posted(kube, ns, "interrupted", "Warning", "")  # the failed attempt was reported
    key = _key(status["location"])
    keys = sorted(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"e2e/{ns}/plain/interrupted-")[
            "Contents"
        ]
    )
    assert keys == [key, key + ".json"]
    assert s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", []) == []
    data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == status["sha256"]


def _pod_log(local: LocalCluster, namespace: str, pod: str) -> str:
    for path in (local.state.logs / "pods").glob(f"{namespace}_{pod}_*/backup.log"):
        return path.read_text(errors="replace")
    return ""


async def test_a_tls_and_auth_cluster_backs_up_through_the_operators_client_identity(
    kube: AsyncClient, namespace: str, s3_server: S3Server
) -> None:
    spec = {
        "replicas": 1,
        "tls": {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}},
        "auth": {"enabled": True},
    }
    await create_ready_cluster(kube, namespace, "secure", spec, timeout=240)
    tls = await client_tls(kube, namespace, "secure")
    root = await root_credentials(kube, namespace, "secure")
    endpoints = member_urls(namespace, "secure", range(1), tls=True)
    async with etcd_client(endpoints, tls, root) as etcd:
        # One by one: with auth on, concurrent first requests would each authenticate
        # (bcrypt) at once.
        revision = 0
        for i in range(100):
            revision = await etcd.put(f"/secure/{i:03d}", "v")
    s3_server.create_bucket(BUCKET)
    await _s3_secret(kube, namespace, "s3-keys", s3_server.access_key, s3_server.secret_key)
    await _create_backup(kube, namespace, "secure", "secure", _s3_destination(s3_server))
    status = (await _final(kube, namespace, "secure"))["status"]
    assert status["phase"] == "Succeeded", status
    assert status["revision"] >= revision
    job = await kube.get(Job, "secure-backup", namespace=namespace)
    pod_spec = job.spec.template.spec  # type: ignore[union-attr]
    secrets = {v.secret.secretName for v in pod_spec.volumes or [] if v.secret}  # type: ignore[union-attr]
    assert secrets == {"secure-operator-tls", "secure-root", "s3-keys"}
    data = s3_server.client().get_object(Bucket=BUCKET, Key=_key(status["location"]))["Body"].read()
    assert hashlib.sha256(data).hexdigest() == status["sha256"]


async def test_admission_refuses_two_destinations_and_spec_changes(
    kube: AsyncClient, namespace: str, s3_server: S3Server
) -> None:
    both = {"s3": {"bucket": BUCKET}, "volume": {"claimName": "c"}}
    with pytest.raises(ApiError, match="exactly one of s3 and volume"):
        await _create_backup(kube, namespace, "both", "x", both)
    with pytest.raises(ApiError, match="exactly one of s3 and volume"):
        await _create_backup(kube, namespace, "neither", "x", {})
    await _create_backup(kube, namespace, "fixed", "missing", {"volume": {"claimName": "c"}})
    with pytest.raises(ApiError, match="spec is immutable"):
        await kube.patch(
            EtcdBackupResource, "fixed", {"spec": {"clusterName": "other"}},
            namespace=namespace, patch_type=PatchType.MERGE,
        )  # fmt: skip

    # A backup of a cluster that does not exist waits Pending and says why.
    async def pending() -> dict[str, Any] | None:
        status = (await _backup(kube, namespace, "fixed")).get("status") or {}
        reasons = {c["reason"] for c in status.get("conditions") or []}
        return status if "ClusterNotFound" in reasons else None

    status = await eventually(pending, 60, "ClusterNotFound")
    assert status["phase"] == "Pending"
