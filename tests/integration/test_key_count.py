"""`EtcdClient.key_count`: keys at a past revision (what a backup records and a restore drill
checks), against real etcd; a compacted revision is reported, not guessed."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from etcd_procs import EtcdBinarySet, LocalEtcdCluster

from etcd_operator.etcd import EtcdClient, FutureRevision, RevisionCompacted


async def test_keys_are_counted_at_a_past_revision_until_it_is_compacted(
    etcd1: LocalEtcdCluster, etcd_bins_checked: EtcdBinarySet
) -> None:
    async with EtcdClient(etcd1.config()) as client:
        for i in range(30):
            at_30 = await client.put(f"/k/{i:02d}", "v")
        await client.put("/k/00", "overwritten: still one key")
        for i in range(30, 40):
            now = await client.put(f"/k/{i:02d}", "v")
        assert await client.key_count(at_30) == 30
        assert await client.key_count(now) == 40
        endpoint = etcd1.endpoints[0]
        assert await client.key_count(at_30, serializable=True, endpoint=endpoint) == 30
        with pytest.raises(FutureRevision):
            await client.key_count(now + 100)
        await asyncio.to_thread(
            subprocess.run,
            [str(etcd_bins_checked.etcdctl), f"--endpoints={endpoint}", "compact", str(now)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with pytest.raises(RevisionCompacted):
            await client.key_count(at_30)
        assert await client.key_count(now) == 40
