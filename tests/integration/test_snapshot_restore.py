"""Restoring a snapshot into a new 3-member cluster with the steps a member pod runs, with real
etcd: the checked copy (snapshot-fetch), `etcdutl snapshot restore` with the flags the pod
builder derives from the member's etcd command line, and restore-commit."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from etcd_procs import EtcdBinarySet, LocalEtcdCluster
from lightkube.models.core_v1 import VolumeMount

from etcd_operator.api.snapshot_source import SnapshotLocation, VolumeSnapshotSource
from etcd_operator.cli import SNAPSHOT_INVALID_EXIT, main
from etcd_operator.etcd import EtcdClient
from etcd_operator.resources.restore import (
    RESTORE_CONTAINER,
    SNAPSHOT_DIR,
    SOURCE_DIR,
    member_restore,
)
from etcd_operator.restore.integrity import SnapshotInvalid, fetch_file

KEYS = 300


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def _snapshot(cluster: LocalEtcdCluster, path: Path) -> int:
    async with EtcdClient(cluster.config()) as client:
        for i in range(KEYS):
            await client.put(f"key-{i:04}", f"value-{i}")
        revision = await client.put("key-0000", "overwritten")
        async with client.snapshot(cluster.endpoints[0]) as stream:
            with path.open("wb") as f:
                async for chunk in stream:
                    f.write(chunk)
    return revision


def _local(arg: str, root: Path) -> str:
    """A container path in an argument -> the same file under this test's directory."""
    for container in ("/var/lib/etcd-snapshot-source", "/var/lib/etcd-snapshot", "/var/lib/etcd"):
        if container in arg:
            return arg.replace(container, str(root / container.strip("/").replace("/", "_")))
    return arg


async def test_three_members_restored_with_the_builders_flags_serve_every_key(
    etcd1: LocalEtcdCluster, etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> None:
    source = etcd_tmp / "var_lib_etcd-snapshot-source"
    source.mkdir()
    revision = await _snapshot(etcd1, source / "snap.db")
    etcd1.stop_all()

    target = LocalEtcdCluster(etcd_bins_checked, etcd_tmp / "restored")
    target.root.mkdir()
    members = [target.new_member(f"r{i}") for i in range(3)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    location = SnapshotLocation(volume=VolumeSnapshotSource(claim_name="c", path="snap.db"))
    for m in members:
        # The member's etcd command line as LocalEtcdCluster starts it: the restore takes its
        # name, initial cluster, token and peer URL from there, as the pod builder does.
        etcd_line = [
            f"--name={m.name}",
            "--data-dir=/var/lib/etcd/data",
            f"--initial-advertise-peer-urls={m.peer_url}",
            f"--initial-cluster={initial}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={target.token}",
        ]
        steps, _ = member_restore(
            location,
            etcd_line,
            data_dir="/var/lib/etcd/data",
            data_mount=VolumeMount(name="data", mountPath="/var/lib/etcd"),
            etcd_image="etcd:v3",
            operator_image="etcd-operator:dev",
        )
        root = etcd_tmp / m.name
        for d in ("var_lib_etcd", "var_lib_etcd-snapshot"):
            (root / d).mkdir(parents=True)
        (root / "var_lib_etcd-snapshot-source").symlink_to(source)
        fetch, restore, commit = steps
        assert restore.name == RESTORE_CONTAINER
        assert main([_local(a, root) for a in fetch.args or []]) == 0
        code, out = await _run(
            str(etcd_bins_checked.etcdutl), *(_local(a, root) for a in restore.args or [])
        )
        assert code == 0, out
        assert main([_local(a, root) for a in commit.args or []]) == 0
        m.data_dir = root / "var_lib_etcd" / "data"
        # Running the steps again (a restarted initial member) keeps the data: never restored
        # twice.
        marker = m.data_dir / "member" / "kept"
        marker.write_text("")
        assert main([_local(a, root) for a in fetch.args or []]) == 0
        code, out = await _run(
            str(etcd_bins_checked.etcdutl), *(_local(a, root) for a in restore.args or [])
        )
        assert code == 0, out
        assert main([_local(a, root) for a in commit.args or []]) == 0
        assert marker.exists()
        assert SNAPSHOT_DIR in (fetch.args or [])[2] and SOURCE_DIR in (fetch.args or [])[1]

    for m in members:
        target.start(m, initial, "new")
    try:
        async with EtcdClient(target.config()) as client:
            await target.wait_healthy(client)
            listed = await client.member_list()
            assert sorted(x.name for x in listed.members) == ["r0", "r1", "r2"]
            for i in range(1, KEYS):
                kv = await client.get(f"key-{i:04}")
                assert kv is not None and kv.value == f"value-{i}".encode()
            first = await client.get("key-0000")
            assert first is not None and first.value == b"overwritten"
            assert first.mod_revision == revision
            assert await client.put("after", "restore") > revision
    finally:
        target.stop_all()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [("truncate", "SnapshotTruncated"), ("alter", "SnapshotCorrupt")],
)
async def test_a_damaged_snapshot_is_refused_by_the_fetch_and_by_etcdutl(
    etcd1: LocalEtcdCluster,
    etcd_bins_checked: EtcdBinarySet,
    etcd_tmp: Path,
    damage: str,
    reason: str,
) -> None:
    good = etcd_tmp / "good.db"
    await _snapshot(etcd1, good)
    data = bytearray(good.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 1000]  # a stream cut short
    else:
        data[len(data) // 2] ^= 0xFF
    bad = etcd_tmp / "bad.db"
    bad.write_bytes(bytes(data))

    assert fetch_file(good, etcd_tmp / "copy.db", None).size == good.stat().st_size
    with pytest.raises(SnapshotInvalid) as refused:
        fetch_file(bad, etcd_tmp / "bad-copy.db", None)
    assert refused.value.reason == reason
    assert not (etcd_tmp / "bad-copy.db").exists()
    assert not (etcd_tmp / "bad-copy.db.partial").exists()
    # The recorded sha256 refuses it too, and the CLI says so with its exit code.
    code = main(["snapshot-fetch", f"--source={bad}", f"--target={etcd_tmp / 'x.db'}"])
    assert code == SNAPSHOT_INVALID_EXIT
    # etcd's own check, as the verification pod runs it, agrees.
    code, out = await _run(
        str(etcd_bins_checked.etcdutl),
        "snapshot",
        "restore",
        str(bad),
        f"--data-dir={etcd_tmp / 'check'}",
    )
    assert code != 0, out
