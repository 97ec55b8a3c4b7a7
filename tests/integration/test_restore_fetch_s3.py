"""snapshot-fetch from a real S3 server (SeaweedFS): a snapshot taken from real etcd comes back
byte for byte; a truncated, altered or missing object, or wrong keys, are refused with a reason
and leave no file behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from etcd_procs import LocalEtcdCluster

from etcd_operator.cli import SNAPSHOT_INVALID_EXIT, main
from etcd_operator.etcd import EtcdClient
from etcd_operator.restore.fetch_s3 import fetch_s3, s3_location
from etcd_operator.restore.integrity import SnapshotInvalid
from harness.s3server import REGION, S3Server

BUCKET = "restore-it"


async def _snapshot(cluster: LocalEtcdCluster) -> bytes:
    chunks = []
    async with EtcdClient(cluster.config()) as client:
        for i in range(200):
            await client.put(f"k{i}", "v" * 200)
        async with client.snapshot(cluster.endpoints[0]) as stream:
            async for chunk in stream:
                chunks.append(chunk)
    return b"".join(chunks)


def _where(s3: S3Server, key: str) -> str:
    body = {
        "bucket": BUCKET,
        "key": key,
        "endpointURL": s3.endpoint,
        "region": REGION,
        "forcePathStyle": True,
    }
    return json.dumps(body)


def _keys(tmp: Path, s3: S3Server, secret: str | None = None) -> str:
    directory = tmp / "keys"
    directory.mkdir(exist_ok=True)
    (directory / "accessKeyID").write_text(s3.access_key)
    (directory / "secretAccessKey").write_text(secret or s3.secret_key)
    return str(directory)


async def test_fetch_from_s3_checks_what_it_reads(
    etcd1: LocalEtcdCluster, s3_server: S3Server, etcd_tmp: Path
) -> None:
    data = await _snapshot(etcd1)
    s3_server.create_bucket(BUCKET)
    client = s3_server.client()
    altered = bytearray(data)
    altered[len(altered) // 2] ^= 0xFF
    for key, body in (("good.db", data), ("trunc.db", data[:-1000]), ("alt.db", bytes(altered))):
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    keys = _keys(etcd_tmp, s3_server)

    target = etcd_tmp / "snapshot.db"
    checked = await fetch_s3(s3_location(_where(s3_server, "good.db"), keys), target, None)
    assert target.read_bytes() == data and checked.size == len(data)

    for key, reason in (
        ("trunc.db", "SnapshotTruncated"),
        ("alt.db", "SnapshotCorrupt"),
        ("missing.db", "SnapshotNotFound"),
    ):
        out = etcd_tmp / f"{key}.out"
        with pytest.raises(SnapshotInvalid) as refused:
            await fetch_s3(s3_location(_where(s3_server, key), keys), out, None)
        assert refused.value.reason == reason
        assert not out.exists() and not out.with_name(out.name + ".partial").exists()

    (etcd_tmp / "w").mkdir()
    wrong = _keys(etcd_tmp / "w", s3_server, secret="not-the-secret")
    with pytest.raises(SnapshotInvalid) as denied:
        await fetch_s3(s3_location(_where(s3_server, "good.db"), wrong), etcd_tmp / "x.db", None)
    assert denied.value.reason not in ("SnapshotNotFound", "SnapshotCorrupt")


def test_the_cli_reads_s3_with_the_mounted_keys(s3_server: S3Server, etcd_tmp: Path) -> None:
    s3_server.create_bucket(BUCKET)
    s3_server.client().put_object(Bucket=BUCKET, Key="cli.db", Body=b"not a snapshot")
    code = main(
        [
            "snapshot-fetch",
            f"--s3={_where(s3_server, 'cli.db')}",
            f"--s3-credentials={_keys(etcd_tmp, s3_server)}",
            f"--target={etcd_tmp / 'out.db'}",
        ]
    )
    assert code == SNAPSHOT_INVALID_EXIT
    assert not (etcd_tmp / "out.db").exists()
