"""The corruption check: when due, every voter's HashKV at one common revision.

Due by `spec.maintenance.corruptionCheck.schedule` (cron, UTC) after the last check recorded in
`status.corruptionCheck`, and in every round while that record names a diverged member: the
planner then replaces it, and the next check (all members agreeing) clears the record. So the
record, not the operator's memory, carries a replacement through restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from croniter import croniter

from etcd_operator.api import EtcdCluster
from etcd_operator.etcd import ClusterMembers, EndpointHealth, EtcdClient, EtcdError
from etcd_operator.planner import KvHash
from etcd_operator.planner.corruption import comparable

HASH_TIMEOUT = 10.0  # HashKV reads the whole keyspace: slower than other calls


def check_due(cluster: EtcdCluster, now: datetime) -> bool:
    """Whether this round compares the members' hashes."""
    schedule = cluster.spec.maintenance.corruption_check.schedule
    last = cluster.status.corruption_check if cluster.status else None
    if schedule is None:
        return last is not None and bool(last.diverged)
    if last is None:
        return True
    if last.diverged:
        return True
    following: datetime = croniter(schedule, last.last_time).get_next(datetime)
    return following <= now


async def observe_hashes(
    etcd: EtcdClient,
    cluster: EtcdCluster,
    members: ClusterMembers | None,
    health: Mapping[int, EndpointHealth],
    now: datetime,
) -> dict[int, KvHash]:
    """Every voter's HashKV at the lowest revision all of them have applied; {} when not due,
    or when some voter does not answer (a partial comparison could accuse the wrong member)."""
    if members is None or not check_due(cluster, now):
        return {}
    voters = [m.id for m in members.members if not m.is_learner]
    seen = {mid: h for mid, h in health.items() if mid in voters and h.status is not None}
    if len(seen) != len(voters) or not all(h.healthy for h in seen.values()):
        return {}
    revision = min(h.status.revision for h in seen.values() if h.status is not None)
    try:
        answers = await asyncio.gather(
            *(
                etcd.hash_kv(h.endpoint, revision=revision, timeout=HASH_TIMEOUT)
                for h in seen.values()
            )
        )
    except EtcdError:
        return {}  # e.g. the revision was compacted meanwhile: the next round tries again
    hashes = {a.member_id: KvHash(revision, a.compact_revision, a.hash) for a in answers}
    # A compaction some members applied and others not yet: not comparable, not recorded; the
    # check stays due and runs again next round.
    return hashes if comparable(hashes) else {}
