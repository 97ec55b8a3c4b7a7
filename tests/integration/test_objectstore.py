"""The object store layer against a real S3 server (SeaweedFS) and a real filesystem."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest

from etcd_operator.objectstore import (
    FileLocation,
    IntegrityError,
    Manifest,
    NotFound,
    ObjectStoreError,
    S3Credentials,
    S3Location,
    fetch,
    open_reader,
    open_writer,
    read_manifest,
    verify,
)
from harness.s3server import REGION, S3Server

MIB = 1024 * 1024
UPLOADER = Path(__file__).with_name("objectstore_upload.py")


def _manifest(data: bytes) -> Manifest:
    return Manifest(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        revision=42,
        cluster_id="abc",
        etcd_version="3.6.7",
        member="c-1",
        start_time="2026-01-01T00:00:00Z",
        completion_time="2026-01-01T00:00:02Z",
    )


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    s3_server.create_bucket("objectstore-it")
    return "objectstore-it"


def _location(server: S3Server, bucket: str, key: str, **kw: object) -> S3Location:
    return S3Location(
        bucket=bucket,
        key=key,
        endpoint_url=server.endpoint,
        region=REGION,
        force_path_style=True,
        credentials=S3Credentials(server.access_key, server.secret_key),
        **kw,  # type: ignore[arg-type]
    )


def _keys(server: S3Server, bucket: str, prefix: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def _chunks(data: bytes, size: int = 32 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_s3_snapshot_round_trips_in_parts_with_its_manifest(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(37 * MIB + 123)  # three parts, the last one short
    location = _location(s3_server, bucket, "rt/snap.db")
    async with open_writer(location, part_size=16 * MIB) as writer:
        async for chunk in _chunks(data):
            await writer.write(chunk)
        await writer.commit(_manifest(data))
    assert _keys(s3_server, bucket, "rt/") == ["rt/snap.db", "rt/snap.db.json"]
    assert await read_manifest(location) == _manifest(data)
    assert await verify(location) == _manifest(data)
    async with open_reader(location) as reader:
        assert b"".join([c async for c in reader]) == data
    target = tmp_path / "copy.db"
    await fetch(location, target)
    assert target.read_bytes() == data
    head = s3_server.client().head_object(Bucket=bucket, Key="rt/snap.db")
    assert head["ContentLength"] == len(data)


async def test_a_failed_s3_stream_leaves_no_object_and_no_upload(
    s3_server: S3Server, bucket: str
) -> None:
    location = _location(s3_server, bucket, "fail/snap.db")

    async def breaking() -> AsyncIterator[bytes]:
        for _ in range(40 * MIB // (32 * 1024)):  # two parts uploaded, then the stream breaks
            yield os.urandom(32 * 1024)
        raise ConnectionResetError("leader lost")

    with pytest.raises(ConnectionResetError):
        async with open_writer(location, part_size=16 * MIB) as writer:
            async for chunk in breaking():
                await writer.write(chunk)
    assert _keys(s3_server, bucket, "fail/") == []
    uploads = s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix="fail/")
    assert uploads.get("Uploads", []) == []
    with pytest.raises(NotFound):
        await read_manifest(location)


async def test_a_failed_part_upload_stops_the_stream_and_leaves_no_object(
    s3_server: S3Server, bucket: str
) -> None:
    location = _location(s3_server, bucket, "partfail/snap.db")
    data = os.urandom(64 * MIB)
    written = 0
    with pytest.raises(ObjectStoreError) as raised:
        async with open_writer(location, part_size=5 * MIB) as writer:
            store = s3_server.client()
            upload = store.list_multipart_uploads(Bucket=bucket, Prefix="partfail/")["Uploads"][0]
            # The store drops the upload (another client, a lifecycle rule): every part fails.
            store.abort_multipart_upload(
                Bucket=bucket, Key="partfail/snap.db", UploadId=upload["UploadId"]
            )
            async for chunk in _chunks(data):
                await writer.write(chunk)
                written += len(chunk)
            await writer.commit(_manifest(data))
    assert "UploadPart" in str(raised.value)  # the store said the upload is gone
    assert written < len(data) // 2  # a failed part stops the stream, not only its end
    assert _keys(s3_server, bucket, "partfail/") == []
    uploads = s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix="partfail/")
    assert uploads.get("Uploads", []) == []


async def test_leaving_the_writer_without_commit_stores_nothing(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    for location in (
        _location(s3_server, bucket, "nocommit/snap.db"),
        FileLocation(PurePosixPath(tmp_path / "nocommit" / "snap.db")),
    ):
        async with open_writer(location) as writer:
            await writer.write(b"x" * 1000)
    assert _keys(s3_server, bucket, "nocommit/") == []
    assert _names(tmp_path / "nocommit") == []


async def test_wrong_s3_credentials_fail_with_the_stores_reason(
    s3_server: S3Server, bucket: str
) -> None:
    wrong_key = S3Location(
        bucket=bucket,
        key="denied/snap.db",
        endpoint_url=s3_server.endpoint,
        region=REGION,
        force_path_style=True,
        credentials=S3Credentials("AKNOSUCHKEY", "whatever"),
    )
    with pytest.raises(ObjectStoreError) as raised:
        async with open_writer(wrong_key):
            pass
    assert raised.value.reason == "InvalidAccessKeyId"
    assert "whatever" not in str(raised.value)
    wrong_secret = S3Location(
        bucket=bucket,
        key="denied/snap.db",
        endpoint_url=s3_server.endpoint,
        region=REGION,
        force_path_style=True,
        credentials=S3Credentials(s3_server.access_key, "not-the-secret"),
    )
    with pytest.raises(ObjectStoreError) as raised:
        async with open_writer(wrong_secret):
            pass
    assert raised.value.reason == "SignatureDoesNotMatch"
    with pytest.raises(ObjectStoreError) as raised:
        async with open_writer(_location(s3_server, "no-such-bucket-here", "x.db")):
            pass
    assert raised.value.reason == "NoSuchBucket"


async def test_an_altered_s3_snapshot_fails_verification(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(MIB)
    location = _location(s3_server, bucket, "altered/snap.db")
    async with open_writer(location) as writer:
        await writer.write(data)
        await writer.commit(_manifest(data))
    altered = bytes([data[0] ^ 1]) + data[1:]
    s3_server.client().put_object(Bucket=bucket, Key="altered/snap.db", Body=altered)
    with pytest.raises(IntegrityError):
        await verify(location)
    with pytest.raises(IntegrityError):
        await fetch(location, tmp_path / "altered.db")
    assert not (tmp_path / "altered.db").exists()
    assert _names(tmp_path) == []


async def test_a_volume_snapshot_appears_only_complete(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB)
    path = tmp_path / "cluster" / "b.db"
    location = FileLocation(PurePosixPath(path))
    async with open_writer(location) as writer:
        await writer.write(data[:MIB])
        # Mid-stream: only a hidden partial name exists, nothing that looks like a snapshot.
        assert _names(path.parent) == [".b.db.partial"]
        await writer.write(data[MIB:])
        await writer.commit(_manifest(data))
    assert _names(path.parent) == ["b.db", "b.db.json"]
    assert path.read_bytes() == data
    assert json.loads((path.parent / "b.db.json").read_text())["sha256"] == _manifest(data).sha256
    assert await verify(location) == _manifest(data)


async def test_a_broken_volume_stream_leaves_no_file(tmp_path: Path) -> None:
    location = FileLocation(PurePosixPath(tmp_path / "b.db"))
    with pytest.raises(ConnectionResetError):
        async with open_writer(location) as writer:
            await writer.write(b"x" * MIB)
            raise ConnectionResetError("member killed")
    assert _names(tmp_path) == []
    with pytest.raises(NotFound):
        await verify(location)


async def test_a_truncated_volume_snapshot_fails_verification(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    location = FileLocation(PurePosixPath(tmp_path / "t.db"))
    async with open_writer(location) as writer:
        await writer.write(data)
        await writer.commit(_manifest(data))
    (tmp_path / "t.db").write_bytes(data[:-100])
    with pytest.raises(IntegrityError, match="bytes, the manifest says"):
        await verify(location)


def _upload_peak_rss_kib(server: S3Server, bucket: str, key: str, mib: int) -> int:
    spec = {
        "bucket": bucket,
        "key": key,
        "endpoint": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "mib": mib,
    }
    out = subprocess.run(
        [sys.executable, str(UPLOADER), json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    result = json.loads(out)
    head = server.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == mib * MIB
    return int(result["peak_rss_kib"])


def test_s3_upload_memory_stays_flat_whatever_the_size(s3_server: S3Server, bucket: str) -> None:
    small = _upload_peak_rss_kib(s3_server, bucket, "flat/small.db", 32)
    large = _upload_peak_rss_kib(s3_server, bucket, "flat/large.db", 384)
    print(f"peak RSS: 32 MiB upload {small // 1024} MiB, 384 MiB upload {large // 1024} MiB")
    # 12x the data; a process that held the stream would grow by ~350 MiB (measured: ~92 MiB
    # peak for both, boto3 included).
    assert large - small < 24 * 1024
    assert large < 150 * 1024


def _file_write_peak_rss_kib(path: Path, mib: int) -> int:
    out = subprocess.run(
        [sys.executable, str(UPLOADER), json.dumps({"path": str(path), "mib": mib})],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert path.stat().st_size == mib * MIB
    path.unlink()
    return int(json.loads(out)["peak_rss_kib"])


def test_file_write_memory_stays_flat_whatever_the_size(tmp_path: Path) -> None:
    small = _file_write_peak_rss_kib(tmp_path / "small.db", 32)
    large = _file_write_peak_rss_kib(tmp_path / "large.db", 384)
    print(f"peak RSS: 32 MiB file {small // 1024} MiB, 384 MiB file {large // 1024} MiB")
    # Batches queued for the writer thread are bounded (files.QUEUED_BATCHES).
    assert large - small < 16 * 1024
    assert large < 150 * 1024
