"""Removing a stored backup (the delete Job's work) against a real S3 server (SeaweedFS) and a
real filesystem: the snapshot and its manifest go, a missing one counts as removed, and a
store that refuses says why (with no secret in what it says)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest

from etcd_operator.backup import contract
from etcd_operator.backup.delete import attempt
from etcd_operator.backup.destination import to_env
from etcd_operator.objectstore import (
    FileLocation,
    Manifest,
    S3Credentials,
    S3Location,
    delete,
    open_writer,
)
from harness.s3server import REGION, S3Server

BUCKET = "delete-it"


def _manifest(data: bytes) -> Manifest:
    return Manifest(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), revision=7, cluster_id="abc",
        etcd_version="3.6.7", member="c-0", start_time="2026-01-01T00:00:00Z",
        completion_time="2026-01-01T00:00:01Z",
    )  # fmt: skip


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _store(location: S3Location | FileLocation, data: bytes) -> None:
    async with open_writer(location) as writer:
        async for chunk in _one(data):
            await writer.write(chunk)
        await writer.commit(_manifest(data))


def _s3(server: S3Server, key: str, secret: str | None = None) -> S3Location:
    return S3Location(
        bucket=BUCKET, key=key, endpoint_url=server.endpoint, region=REGION,
        force_path_style=True,
        credentials=S3Credentials(server.access_key, secret or server.secret_key),
    )  # fmt: skip


def _keys(server: S3Server, prefix: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    s3_server.create_bucket(BUCKET)
    return BUCKET


async def test_s3_snapshot_and_manifest_are_removed_and_again_is_fine(
    s3_server: S3Server, bucket: str
) -> None:
    location = _s3(s3_server, "ns/demo/a-1.db")
    keep = _s3(s3_server, "ns/demo/a-10.db")  # shares the prefix: must stay
    await _store(location, b"snapshot bytes")
    await _store(keep, b"other bytes")
    assert _keys(s3_server, "ns/demo/a-1.db") == ["ns/demo/a-1.db", "ns/demo/a-1.db.json"]
    await delete(location)
    assert _keys(s3_server, "ns/demo/") == ["ns/demo/a-10.db", "ns/demo/a-10.db.json"]
    await delete(location)  # already gone: removed all the same


async def test_the_delete_job_attempt_reads_its_environment_and_mounted_keys(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    location = _s3(s3_server, "job/b.db")
    await _store(location, b"x" * 1000)
    keys = tmp_path / "s3"
    keys.mkdir()
    (keys / contract.S3_ACCESS_KEY).write_text(s3_server.access_key)
    (keys / contract.S3_SECRET_KEY).write_text(s3_server.secret_key)
    mounts = contract.Mounts(tls=str(tmp_path / "none"), root=str(tmp_path / "none"), s3=str(keys))
    env = {contract.ENV_DESTINATION: to_env(location)}
    result = await attempt(env, mounts)
    assert (result.outcome, result.reason) == ("Succeeded", "SnapshotDeleted")
    assert _keys(s3_server, "job/") == []
    # Wrong keys: a permanent failure with the store's reason, no secret in the message.
    await _store(location, b"y")
    (keys / contract.S3_SECRET_KEY).write_text("not-the-secret")
    result = await attempt(env, mounts)
    assert (result.outcome, result.reason) == ("Failed", "SignatureDoesNotMatch")
    assert result.exit_code == contract.PERMANENT_EXIT_CODE
    assert "not-the-secret" not in result.to_json()
    assert _keys(s3_server, "job/") == ["job/b.db", "job/b.db.json"]


async def test_a_file_snapshot_and_manifest_are_removed(tmp_path: Path) -> None:
    location = FileLocation(PurePosixPath(tmp_path / "etcd" / "demo" / "c-1.db"))
    await _store(location, b"file snapshot")
    directory = tmp_path / "etcd" / "demo"
    assert sorted(p.name for p in directory.iterdir()) == ["c-1.db", "c-1.db.json"]
    await delete(location)
    assert list(directory.iterdir()) == []
    await delete(location)
    await delete(FileLocation(PurePosixPath(tmp_path / "never" / "made.db")))
