"""The backup Job's attempt (`etcd-operator backup`) against real etcd members and real S3."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path, PurePosixPath

from etcd_procs import LocalEtcdCluster

from etcd_operator.backup import contract
from etcd_operator.backup.destination import to_env
from etcd_operator.backup.run import attempt
from etcd_operator.etcd import EtcdClient
from etcd_operator.objectstore import (
    FileLocation,
    S3Credentials,
    S3Location,
    read_manifest,
    verify,
)
from harness.s3server import REGION, S3Server


def _mounts(tmp: Path, s3: S3Server | None = None) -> contract.Mounts:
    s3_dir = tmp / "s3"
    s3_dir.mkdir()
    if s3 is not None:
        (s3_dir / contract.S3_ACCESS_KEY).write_text(s3.access_key)
        (s3_dir / contract.S3_SECRET_KEY).write_text(s3.secret_key)
    return contract.Mounts(tls=str(tmp / "no-tls"), root=str(tmp / "no-root"), s3=str(s3_dir))


async def _fill(cluster: LocalEtcdCluster, n: int) -> int:
    async with EtcdClient(cluster.config()) as client:
        revision = 0
        for i in range(n):
            revision = await client.put(f"/k/{i:05d}", "v" * 100)
        return revision


async def test_a_backup_to_s3_comes_from_a_follower_with_its_manifest(
    etcd3: LocalEtcdCluster, s3_server: S3Server, tmp_path: Path
) -> None:
    s3_server.create_bucket("run-it")
    revision = await _fill(etcd3, 200)
    location = S3Location("run-it", "ns/c/b.db", s3_server.endpoint, REGION, force_path_style=True)
    env = {
        contract.ENV_ENDPOINTS: ",".join(etcd3.endpoints),
        contract.ENV_DESTINATION: to_env(location),
    }
    result = await attempt(env, _mounts(tmp_path, s3_server))
    assert result.outcome == "Succeeded", result
    assert result.location == "s3://run-it/ns/c/b.db"
    assert result.revision == revision
    assert result.keys == 200  # counted at the snapshot's revision, for restore drills
    async with EtcdClient(etcd3.config()) as client:
        leader = (await client.status(etcd3.endpoints[0])).leader
        statuses = {m.name: await client.status(m.client_url) for m in etcd3.members.values()}
    assert statuses[result.member or ""].member_id != leader  # a follower served it
    body = s3_server.client().get_object(Bucket="run-it", Key="ns/c/b.db")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == result.sha256
    assert len(body) == result.size
    credentials = S3Credentials(s3_server.access_key, s3_server.secret_key)
    manifest = await read_manifest(replace(location, credentials=credentials))
    assert manifest.sha256 == result.sha256 and manifest.revision == revision
    assert manifest.keys == 200


async def test_a_member_down_does_not_fail_the_backup(
    etcd3: LocalEtcdCluster, tmp_path: Path
) -> None:
    await _fill(etcd3, 50)
    down = next(iter(etcd3.members))
    etcd3.stop(down)
    location = FileLocation(PurePosixPath(tmp_path / "vol" / "c" / "b.db"))
    env = {
        contract.ENV_ENDPOINTS: ",".join(etcd3.endpoints),
        contract.ENV_DESTINATION: to_env(location),
    }
    result = await attempt(env, _mounts(tmp_path))
    assert result.outcome == "Succeeded", result
    assert result.member != down
    assert (await verify(location)).sha256 == result.sha256


async def test_wrong_s3_keys_fail_the_attempt_with_the_stores_reason(
    etcd1: LocalEtcdCluster, s3_server: S3Server, tmp_path: Path
) -> None:
    s3_server.create_bucket("run-denied")
    location = S3Location("run-denied", "b.db", s3_server.endpoint, REGION, force_path_style=True)
    mounts = _mounts(tmp_path)
    (Path(mounts.s3) / contract.S3_ACCESS_KEY).write_text("AKWRONG")
    (Path(mounts.s3) / contract.S3_SECRET_KEY).write_text("wrong-secret-value")
    env = {
        contract.ENV_ENDPOINTS: ",".join(etcd1.endpoints),
        contract.ENV_DESTINATION: to_env(location),
    }
    result = await attempt(env, mounts)
    assert (result.outcome, result.reason) == ("Failed", "InvalidAccessKeyId")
    assert "wrong-secret-value" not in result.to_json()
    listed = s3_server.client().list_objects_v2(Bucket="run-denied")
    assert listed.get("Contents", []) == []


async def test_no_reachable_member_fails_cleanly(etcd1: LocalEtcdCluster, tmp_path: Path) -> None:
    etcd1.stop_all()
    location = FileLocation(PurePosixPath(tmp_path / "b.db"))
    env = {
        contract.ENV_ENDPOINTS: ",".join(etcd1.endpoints),
        contract.ENV_DESTINATION: to_env(location),
    }
    result = await attempt(env, _mounts(tmp_path))
    assert result.outcome == "Failed"
    assert result.reason.startswith("Etcd"), result
    assert not (tmp_path / "b.db").exists()
    assert not (tmp_path / ".b.db.partial").exists()
