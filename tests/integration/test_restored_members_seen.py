"""What etcd itself says about members restored from a snapshot, the fact the planner's
Restoring phase reads (planner/restored.py): every initial member is listed from the restore on,
and only one that has run publishes its client URLs. (Its name is no such fact: etcd 3.5 lists a
member that never ran without one, 3.6 with the name from the initial cluster.)"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from etcd_procs import EtcdBinarySet, LocalEtcdCluster

from etcd_operator.etcd import EtcdClient


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def test_only_restored_members_that_ran_publish_client_urls(
    etcd1: LocalEtcdCluster, etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> None:
    snapshot = etcd_tmp / "snap.db"
    async with EtcdClient(etcd1.config()) as client:
        await client.put("kept", "yes")
        async with client.snapshot(etcd1.endpoints[0]) as stream:
            with snapshot.open("wb") as f:
                async for chunk in stream:
                    f.write(chunk)
    etcd1.stop_all()

    target = LocalEtcdCluster(etcd_bins_checked, etcd_tmp / "restored")
    target.root.mkdir()
    members = [target.new_member(f"r{i}") for i in range(3)]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        code, out = await _run(
            str(etcd_bins_checked.etcdutl),
            "snapshot",
            "restore",
            str(snapshot),
            f"--name={m.name}",
            f"--data-dir={m.data_dir}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-token={target.token}",
            f"--initial-advertise-peer-urls={m.peer_url}",
        )
        assert code == 0, out
    # Two of three run: they form the restored cluster; r2 never runs.
    for m in members[:2]:
        target.start(m, initial, "new")
    try:
        running = tuple(m.client_url for m in members[:2])
        async with EtcdClient(target.config(endpoints=running)) as client:
            await target.wait_healthy(client)

            async def published() -> dict[str, tuple[tuple[str, ...], str]]:
                """Client URLs and name of each member, by its peer URL."""
                listed = await client.member_list()
                return {m.peer_urls[0]: (m.client_urls, m.name) for m in listed.members}

            r0, r1, r2 = (m.peer_url for m in members)
            deadline = asyncio.get_running_loop().time() + 10
            seen = await published()
            while not (seen.get(r0, ((), ""))[0] and seen.get(r1, ((), ""))[0]):
                assert asyncio.get_running_loop().time() < deadline, seen
                await asyncio.sleep(0.1)
                seen = await published()
            # Every initial member is listed from the restore on, whether it ran or not.
            assert sorted(seen) == sorted([r0, r1, r2])
            assert seen[r0] == ((members[0].client_url,), "r0")
            assert seen[r1] == ((members[1].client_url,), "r1")
            urls, name = seen[r2]
            assert urls == () and name in ("", "r2")
            kept = await client.get("kept")
            assert kept is not None and kept.value == b"yes"
    finally:
        target.stop_all()
