"""A member whose data was altered on disk is told apart by HashKV at a common revision, on
real etcd: the fact the corruption check (planner/corruption.py) stands on.

etcd checks nothing of its keyspace at start by default, so a value changed in place inside a
stopped member's bbolt file (same length, the file's structure intact) is served as if it were
true; only comparing members' hashes at one revision shows which member diverged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from etcd_procs import LocalEtcdCluster

from etcd_operator.api import parse_cluster
from etcd_operator.etcd import EtcdClient, MemberStatus
from etcd_operator.handlers.corruption import observe_hashes
from etcd_operator.planner import KvHash, diverged_members

TRUE = b"payload-0123456789-true"
FALSE = b"payload-0123456789-fals"  # same length: only bytes change, no page moves


async def _applied(client: EtcdClient, revision: int) -> bool:
    statuses = await client.statuses()
    return all(isinstance(s, MemberStatus) and s.revision >= revision for s in statuses.values())


def _alter_in_place(db: Path) -> None:
    data = bytearray(db.read_bytes())
    at = data.find(TRUE)
    assert at >= 0, "the value is in the member's bbolt file"
    assert data.find(TRUE, at + 1) < 0, "exactly one copy of the value"
    data[at : at + len(FALSE)] = FALSE
    db.write_bytes(bytes(data))


async def test_a_member_altered_on_disk_diverges_from_the_majority_in_hash_kv(
    etcd3: LocalEtcdCluster, client3: EtcdClient
) -> None:
    for i in range(20):
        await client3.put(f"k{i}", f"v{i}")
    revision = await client3.put("victim", TRUE.decode())
    for _ in range(100):
        if await _applied(client3, revision):
            break
    victim = etcd3.members["m2"]
    victim_id = (await client3.status(victim.client_url)).member_id
    etcd3.stop("m2")  # a graceful stop commits the backend
    _alter_in_place(victim.data_dir / "member" / "snap" / "db")
    initial = ",".join(f"{m.name}={m.peer_url}" for m in etcd3.members.values())
    etcd3.start(victim, initial, "existing")
    await etcd3.wait_healthy(client3)

    got = await client3.get("victim", serializable=True, endpoint=victim.client_url)
    assert got is not None and got.value == FALSE, "etcd serves the altered value unchecked"
    hashes = {}
    for endpoint in etcd3.endpoints:
        h = await client3.hash_kv(endpoint, revision=revision)
        hashes[h.member_id] = KvHash(revision, h.compact_revision, h.hash)
    assert len({h.hash for h in hashes.values()}) == 2
    verdict = diverged_members(hashes, voters=3)
    assert verdict == (victim_id,), "the altered member, and only it, is the minority"

    # The shell's own observation finds the same, at the revision every voter has applied.
    cluster = parse_cluster(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": {"name": "it", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {"maintenance": {"corruptionCheck": {"schedule": "0 3 * * *"}}},
        }
    )
    health = {h.status.member_id: h for h in await client3.health_all() if h.status}
    observed = await observe_hashes(
        client3, cluster, await client3.member_list(), health, datetime.now(UTC)
    )
    assert set(observed) == set(hashes)
    assert diverged_members(observed, voters=3) == (victim_id,)
