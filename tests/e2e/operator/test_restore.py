"""EtcdRestore: a snapshot on a claim becomes a new 3-member cluster serving every key; a
truncated, altered or mismatched snapshot is refused before anything is created."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import (
    Container,
    EnvVar,
    EnvVarSource,
    PersistentVolumeClaimVolumeSource,
    PodSecurityContext,
    PodSpec,
    SeccompProfile,
    SecretKeySelector,
    Volume,
    VolumeMount,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import PatchType

from etcd_operator.api import GROUP
from etcd_operator.etcd import AuthError, Credentials
from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource, EtcdRestoreResource
from etcd_operator.resources.pod import DEFAULT_OPERATOR_IMAGE
from etcd_operator.resources.security import restricted_container_security
from harness.clusters import (
    client_tls,
    condition,
    create_cluster,
    create_ready_cluster,
    etcd_client,
    eventually,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.operations import cluster_absent, create_claim, create_restore, final
from harness.operator_process import OperatorProcess
from harness.s3server import REGION, S3Server

pytestmark = pytest.mark.e2e

KEYS = 10_000
BATCH = 250
# Runs in the operator's image: the project's own etcd client streams a snapshot from the
# member to the claim, then writes a truncated and an altered copy beside it.
SNAPSHOT_SCRIPT = """
import asyncio, hashlib, os, sys
from etcd_operator.etcd import Credentials, EtcdClient, EtcdConfig

async def main(url):
    digest = hashlib.sha256()
    password = os.environ.get("ROOT_PASSWORD")
    credentials = Credentials("root", password) if password else None
    async with EtcdClient(EtcdConfig(endpoints=(url,), credentials=credentials)) as client:
        async with client.snapshot(url) as stream:
            with open("/backup/snap.db", "wb") as f:
                async for chunk in stream:
                    f.write(chunk)
                    digest.update(chunk)
    data = open("/backup/snap.db", "rb").read()
    open("/backup/truncated.db", "wb").write(data[: len(data) - 1000])
    altered = bytearray(data)
    altered[len(altered) // 3] ^= 0xFF
    open("/backup/altered.db", "wb").write(bytes(altered))
    print("sha256", digest.hexdigest(), flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def _fill(
    url: tuple[str, ...], keys: int = KEYS, credentials: Credentials | None = None
) -> int:
    async with etcd_client(url, credentials=credentials) as etcd:
        # One request first: with auth it authenticates the channel (bcrypt) once, not per put.
        revision = await etcd.put("first", "write")
        for start in range(0, keys, BATCH):
            revisions = await asyncio.gather(
                *(
                    etcd.put(f"key-{i:05}", f"value-{i}-{'x' * 64}")
                    for i in range(start, start + BATCH)
                )
            )
            revision = max(revision, *revisions)
        return revision


async def _snapshot_to_claim(
    kube: AsyncClient, namespace: str, url: str, root_secret: str | None = None
) -> str:
    """Take a snapshot with the etcd client in a helper pod writing to claim `backups` (as
    root with the password in `root_secret`); returns its sha256."""
    env = None
    if root_secret is not None:
        env = [
            EnvVar(
                name="ROOT_PASSWORD",
                valueFrom=EnvVarSource(
                    secretKeyRef=SecretKeySelector(name=root_secret, key="password")
                ),
            )
        ]
    await create_claim(kube, namespace)
    await kube.create(
        Pod(
            metadata=ObjectMeta(name="snapshotter", namespace=namespace),
            spec=PodSpec(
                restartPolicy="Never",
                containers=[
                    Container(
                        name="main",
                        image=DEFAULT_OPERATOR_IMAGE,
                        command=["python3", "-c", SNAPSHOT_SCRIPT, url],
                        env=env,
                        volumeMounts=[VolumeMount(name="backup", mountPath="/backup")],
                        securityContext=restricted_container_security(),
                    )
                ],
                volumes=[
                    Volume(
                        name="backup",
                        persistentVolumeClaim=PersistentVolumeClaimVolumeSource(
                            claimName="backups"
                        ),
                    )
                ],
                securityContext=PodSecurityContext(
                    runAsNonRoot=True,
                    runAsUser=65532,
                    runAsGroup=65532,
                    fsGroup=65532,
                    seccompProfile=SeccompProfile(type="RuntimeDefault"),
                ),
            ),
        )
    )

    async def done() -> str | None:
        pod = await kube.get(Pod, "snapshotter", namespace=namespace)
        phase = pod.status.phase if pod.status else None
        assert phase != "Failed", "the snapshot helper pod failed"
        return phase if phase == "Succeeded" else None

    await eventually(done, 120, "the snapshot helper pod")
    lines = [line async for line in kube.log("snapshotter", namespace=namespace)]
    sha = next(line.split()[1] for line in lines if line.startswith("sha256 "))
    await kube.delete(Pod, "snapshotter", namespace=namespace)
    return sha


async def _restore(
    kube: AsyncClient,
    namespace: str,
    name: str,
    path: str,
    cluster: str,
    cluster_spec: dict[str, Any] | None = None,
    **source: Any,
) -> None:
    await create_restore(
        kube,
        namespace,
        name,
        {
            "source": {"volume": {"claimName": "backups", "path": path}, **source},
            "cluster": {"name": cluster, "spec": cluster_spec or {"replicas": 3}},
        },
    )


async def _finished(kube: AsyncClient, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    return await final(kube, EtcdRestoreResource, namespace, name, within=timeout)


async def test_a_snapshot_on_a_claim_is_restored_into_a_new_three_member_cluster(
    kube: AsyncClient, namespace: str
) -> None:
    await create_ready_cluster(kube, namespace, "src", {"replicas": 1})
    revision = await _fill(member_urls(namespace, "src", [0]))
    sha = await _snapshot_to_claim(kube, namespace, member_urls(namespace, "src", [0])[0])

    # Refused before anything is created: truncated, altered, and a sha256 that does not match.
    bad = {
        "trunc": ("truncated.db", {}, "SnapshotTruncated"),
        "alt": ("altered.db", {}, "SnapshotCorrupt"),
        "sha": ("snap.db", {"sha256": "0" * 64}, "SHA256Mismatch"),
        "none": ("missing.db", {}, "SnapshotNotFound"),
    }
    for name, (path, extra, _) in bad.items():
        await _restore(kube, namespace, f"bad-{name}", path, f"never-{name}", **extra)
    for name, (_, _, reason) in bad.items():
        body = await _finished(kube, namespace, f"bad-{name}", 120)
        assert body["status"]["phase"] == "Failed"
        verified = condition(body, "Verified")
        assert verified is not None and verified["status"] == "False"
        assert verified["reason"] == reason, verified
        assert await cluster_absent(kube, namespace, f"never-{name}")
        assert not await member_pods(kube, namespace, f"never-{name}")

    # The source cluster goes away; the snapshot alone brings the data back.
    await kube.delete(EtcdClusterResource, "src", namespace=namespace)
    await eventually(lambda: cluster_absent(kube, namespace, "src"), 120, "src deleted")
    started = time.monotonic()
    await _restore(kube, namespace, "good", "snap.db", "restored", sha256=sha)
    body = await _finished(kube, namespace, "good", 300)
    took = time.monotonic() - started
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["sha256"] == sha
    assert body["status"]["revision"] == revision
    assert body["status"]["clusterName"] == "restored"
    print(f"restore of {KEYS} keys into 3 members took {took:.1f}s")

    cluster = await wait_ready(kube, namespace, "restored", 3)
    annotations = cluster["metadata"]["annotations"]
    assert annotations[f"{GROUP}/restored-from"] == "good"
    assert "ownerReferences" not in cluster["metadata"]
    assert cluster["spec"]["bootstrap"]["restore"]["sha256"] == sha
    async with etcd_client(member_urls(namespace, "restored", range(3))) as etcd:
        listed = await etcd.member_list()
        assert len(listed.voters) == 3
        assert await etcd.revision() >= revision
        for start in range(0, KEYS, BATCH):
            got = await asyncio.gather(
                *(etcd.get(f"key-{i:05}") for i in range(start, start + BATCH))
            )
            for i, kv in zip(range(start, start + BATCH), got, strict=True):
                assert kv is not None and kv.value == f"value-{i}-{'x' * 64}".encode()

    # Another restore into the existing name is refused and leaves the cluster alone.
    await _restore(kube, namespace, "again", "snap.db", "restored", sha256=sha)
    body = await _finished(kube, namespace, "again", 120)
    restored = condition(body, "Restored")
    assert restored is not None and restored["reason"] == "ClusterExists"
    after = await kube.get(EtcdClusterResource, "restored", namespace=namespace)
    assert after.metadata is not None and after.metadata.annotations is not None
    assert after.metadata.annotations[f"{GROUP}/restored-from"] == "good"


async def test_a_restored_cluster_may_serve_tls(kube: AsyncClient, namespace: str) -> None:
    """Peer URLs of the restored members are https, as the members then serve them."""
    await create_ready_cluster(kube, namespace, "plain", {"replicas": 1})
    revision = await _fill(member_urls(namespace, "plain", [0]), keys=1_000)
    await _snapshot_to_claim(kube, namespace, member_urls(namespace, "plain", [0])[0])
    await kube.delete(EtcdClusterResource, "plain", namespace=namespace)
    tls = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}
    await _restore(kube, namespace, "to-tls", "snap.db", "secure", {"replicas": 3, "tls": tls})
    body = await _finished(kube, namespace, "to-tls", 300)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    pods = await member_pods(kube, namespace, "secure")
    for pod in pods:
        assert pod.spec is not None and pod.spec.initContainers is not None
        restore = next(c for c in pod.spec.initContainers if c.name == "snapshot-restore")
        assert any(
            a.startswith("--initial-advertise-peer-urls=https://") for a in restore.args or []
        )
    tls_config = await client_tls(kube, namespace, "secure")
    async with etcd_client(
        member_urls(namespace, "secure", range(3), tls=True), tls_config
    ) as etcd:
        assert await etcd.revision() >= revision
        got = await etcd.get("key-00999")
        assert got is not None and got.value == f"value-999-{'x' * 64}".encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": {"sha256": "a" * 64}}, "exactly one snapshot source"),
        ({"source": {"volume": {"claimName": "b", "path": "a/../b"}}}, "'..' segments"),
        ({"cluster": {"name": "c", "spec": {"replicas": 0}}}, "replicas"),
        (
            {
                "cluster": {
                    "name": "c",
                    "spec": {"bootstrap": {"restore": {"volume": {"claimName": "b", "path": "a"}}}},
                }
            },
            "set by the restore",
        ),
    ],
    ids=["no-source", "dotdot", "replicas", "bootstrap-given"],
)
async def test_invalid_restores_are_rejected_at_admission(
    kube: AsyncClient, namespace: str, change: dict[str, Any], message: str
) -> None:
    spec = {
        "source": {"volume": {"claimName": "b", "path": "a.db"}},
        "cluster": {"name": "c"},
        **change,
    }
    with pytest.raises(ApiError) as err:
        await create_restore(kube, namespace, "bad", spec)
    assert err.value.status.code == 422
    assert message in (err.value.status.message or "")


async def test_a_restores_spec_and_a_clusters_bootstrap_are_immutable(
    kube: AsyncClient, namespace: str
) -> None:
    await _restore(kube, namespace, "fixed", "a.db", "c")
    with pytest.raises(ApiError) as err:
        await kube.patch(
            EtcdRestoreResource,
            "fixed",
            {"spec": {"source": {"volume": {"claimName": "backups", "path": "b.db"}}}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    assert err.value.status.code == 422
    assert "spec is immutable" in (err.value.status.message or "")
    source = {"volume": {"claimName": "b", "path": "a.db"}}
    await create_cluster(
        kube, namespace, "boot", {"replicas": 1, "paused": True, "bootstrap": {"restore": source}}
    )
    with pytest.raises(ApiError) as err:
        await patch_spec(kube, namespace, "boot", {"bootstrap": {"restore": None}})
    assert err.value.status.code == 422
    assert "spec.bootstrap is immutable" in (err.value.status.message or "")


@pytest.mark.parametrize("kill_at", ["Verifying", "cluster-created"])
async def test_an_operator_killed_mid_restore_finishes_it_with_one_cluster(
    kube: AsyncClient, namespace: str, operator: OperatorProcess, kill_at: str
) -> None:
    await create_ready_cluster(kube, namespace, "orig", {"replicas": 1})
    revision = await _fill(member_urls(namespace, "orig", [0]), keys=500)
    await _snapshot_to_claim(kube, namespace, member_urls(namespace, "orig", [0])[0])
    await _restore(kube, namespace, "crashy", "snap.db", "phoenix", {"replicas": 3})

    async def reached() -> bool:
        if kill_at == "cluster-created":
            return not await cluster_absent(kube, namespace, "phoenix")
        got = await kube.get(EtcdRestoreResource, "crashy", namespace=namespace)
        body: dict[str, Any] = got.to_dict()  # type: ignore[no-untyped-call]
        return (body.get("status") or {}).get("phase") == kill_at

    await eventually(reached, 120, f"the restore to reach {kill_at}", 0.1)
    operator.kill()
    await asyncio.sleep(3)  # pods carry on without an operator
    operator.start()

    body = await _finished(kube, namespace, "crashy", 300)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    clusters = [c async for c in kube.list(EtcdClusterResource, namespace=namespace)]
    assert sorted(c.metadata.name for c in clusters if c.metadata) == ["orig", "phoenix"]
    async with etcd_client(member_urls(namespace, "phoenix", range(3))) as etcd:
        assert await etcd.revision() >= revision
        got = await etcd.get("key-00499")
        assert got is not None and got.value == f"value-499-{'x' * 64}".encode()


async def test_users_and_roles_come_with_the_snapshot(kube: AsyncClient, namespace: str) -> None:
    """A snapshot of a cluster with auth on restores with auth on; root's password is the one
    root had, so the new cluster names the same root Secret."""
    password = "restored-root-password-0123456789"
    await kube.create(
        Secret(
            metadata=ObjectMeta(name="root-pw", namespace=namespace),
            stringData={"password": password},
        )
    )
    auth = {"enabled": True, "rootSecretName": "root-pw"}
    await create_ready_cluster(kube, namespace, "locked", {"replicas": 1, "auth": auth})
    root = Credentials("root", password)
    url = member_urls(namespace, "locked", [0])

    async def auth_on() -> bool:
        async with etcd_client(url, credentials=root) as etcd:
            return (await etcd.auth_status()).enabled

    await eventually(auth_on, 120, "auth enabled on the source")
    revision = await _fill(url, keys=300, credentials=root)
    await _snapshot_to_claim(kube, namespace, url[0], root_secret="root-pw")
    await kube.delete(EtcdClusterResource, "locked", namespace=namespace)

    await _restore(
        kube, namespace, "with-auth", "snap.db", "relocked", {"replicas": 3, "auth": auth}
    )
    body = await _finished(kube, namespace, "with-auth", 300)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    endpoints = member_urls(namespace, "relocked", range(3))
    async with etcd_client(endpoints, credentials=root) as etcd:
        assert (await etcd.auth_status()).enabled
        assert await etcd.revision() >= revision
        got = await etcd.get("key-00299")
        assert got is not None and got.value == f"value-299-{'x' * 64}".encode()
    async with etcd_client(endpoints) as anonymous:
        with pytest.raises(AuthError):
            await anonymous.put("anonymous", "write")


async def test_an_etcdbackup_in_s3_is_restored_by_name(
    kube: AsyncClient, namespace: str, s3_server: S3Server
) -> None:
    """EtcdBackup streams the snapshot to S3 (SeaweedFS); EtcdRestore names the backup, reads
    the object with the mounted keys and checks it against the sha256 the backup recorded."""
    bucket = "restore-e2e"
    s3_server.create_bucket(bucket)
    keys = {
        "accessKeyID": base64.b64encode(s3_server.access_key.encode()).decode(),
        "secretAccessKey": base64.b64encode(s3_server.secret_key.encode()).decode(),
    }
    await kube.create(Secret(metadata=ObjectMeta(name="s3-keys", namespace=namespace), data=keys))
    await create_ready_cluster(kube, namespace, "s3src", {"replicas": 1})
    revision = await _fill(member_urls(namespace, "s3src", [0]), keys=2_000)
    s3 = {
        "bucket": bucket,
        "endpointURL": s3_server.pod_endpoint,
        "region": REGION,
        "forcePathStyle": True,
        "credentialsSecretName": "s3-keys",
    }
    await kube.create(
        EtcdBackupResource(
            metadata=ObjectMeta(name="nightly", namespace=namespace),
            spec={"clusterName": "s3src", "destination": {"s3": {**s3, "prefix": "e2e"}}},
        )
    )
    # Named before the backup finished: the restore waits for it.
    await _restore_from(kube, namespace, "from-backup", {"backup": {"name": "nightly"}}, "s3dst")
    # A key that is not there is refused before anything is created.
    await _restore_from(kube, namespace, "no-object", {"s3": {**s3, "key": "nope.db"}}, "never")

    missing = await _finished(kube, namespace, "no-object", 120)
    verified = condition(missing, "Verified")
    assert verified is not None and verified["status"] == "False"
    assert verified["reason"] == "SnapshotNotFound", verified
    assert await cluster_absent(kube, namespace, "never")

    body = await _finished(kube, namespace, "from-backup", 300)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    backup = await kube.get(EtcdBackupResource, "nightly", namespace=namespace)
    recorded: dict[str, Any] = backup.to_dict()["status"]  # type: ignore[no-untyped-call]
    assert body["status"]["sha256"] == recorded["sha256"]
    assert body["status"]["revision"] == recorded["revision"] >= revision
    cluster = await wait_ready(kube, namespace, "s3dst", 3)
    assert cluster["spec"]["bootstrap"]["restore"]["s3"]["key"] == recorded[
        "location"
    ].removeprefix(f"s3://{bucket}/")
    async with etcd_client(member_urls(namespace, "s3dst", range(3))) as etcd:
        assert await etcd.revision() >= revision
        for i in (0, 999, 1_999):
            got = await etcd.get(f"key-{i:05}")
            assert got is not None and got.value == f"value-{i}-{'x' * 64}".encode()


async def _restore_from(
    kube: AsyncClient, namespace: str, name: str, source: dict[str, Any], cluster: str
) -> None:
    spec = {"source": source, "cluster": {"name": cluster, "spec": {"replicas": 3}}}
    await create_restore(kube, namespace, name, spec)
