"""Space in the shell: read etcd's alarms and status records into `SpaceState`, and apply the
space steps (compact, defragment one member, disarm)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime

from etcd_operator.api import EtcdCluster
from etcd_operator.etcd import EndpointHealth, EtcdClient, EtcdError
from etcd_operator.etcd.errors import RevisionCompacted
from etcd_operator.etcd.types import Alarm, AlarmType
from etcd_operator.planner import (
    Compact,
    Defragment,
    DefragPolicy,
    DefragRun,
    DisarmAlarm,
    SpaceState,
    next_fire,
)
from etcd_operator.planner.model import DEFAULT_QUOTA_BYTES


def next_defrag(cluster: EtcdCluster, now: datetime) -> datetime | None:
    """When the defragmentation schedule fires next: the loop wakes then, not polling."""
    spec = cluster.spec.maintenance.defrag
    if spec is None or spec.schedule is None:
        return None
    return next_fire(spec.schedule, now)


def quota_of(cluster: EtcdCluster) -> int:
    """The backend quota the members run with."""
    return cluster.spec.etcd.quota_backend_bytes or DEFAULT_QUOTA_BYTES


async def observe_space(
    etcd: EtcdClient | None, cluster: EtcdCluster, health: Mapping[int, EndpointHealth]
) -> SpaceState:
    """etcd's alarm list is read only when some member's status reports an error, so a calm
    cluster costs no extra request."""
    alarms: tuple[tuple[int, str], ...] = ()
    if etcd is not None and any(h.status and h.status.errors for h in health.values()):
        with contextlib.suppress(EtcdError):  # unread: the members' own reports still count
            alarms = tuple((a.member_id, a.alarm.name) for a in await etcd.alarms())
    spec = cluster.spec.maintenance.defrag
    policy = (
        DefragPolicy(spec.schedule, spec.fragmentation_threshold, spec.min_db_bytes)
        if spec is not None
        else None
    )
    recorded = cluster.status.maintenance if cluster.status else None
    run = recorded.last_defrag if recorded else None
    no_space = recorded.no_space if recorded else None
    return SpaceState(
        alarms=alarms,
        quota=quota_of(cluster),
        defrag=policy,
        last_defrag=DefragRun(run.trigger, run.start_time, tuple(m.name for m in run.members))
        if run is not None
        else None,
        compacted_at=no_space.compacted_at if no_space else None,
        db_size_before=no_space.db_size_before if no_space else 0,
        compacted_revision=no_space.revision if no_space else None,
        created=cluster.metadata.creation_timestamp,
    )


async def apply_space(
    etcd: EtcdClient,
    health: Mapping[int, EndpointHealth],
    step: Compact | Defragment | DisarmAlarm,
) -> None:
    match step:
        case Compact():
            # The whole history up to now: what etcd's documentation does for NOSPACE.
            with contextlib.suppress(RevisionCompacted):
                await etcd.compact(await etcd.revision(), physical=True)
        case Defragment(member_id=member_id, member=name):
            seen = health.get(member_id)
            if seen is None:
                raise EtcdError(f"no endpoint known for member {name}")
            # Long deadline (EtcdConfig.defragment_timeout): the member blocks until done.
            await etcd.defragment(seen.endpoint)
        case DisarmAlarm(member_ids=ids, alarm=kind):
            await etcd.disarm_alarms([Alarm(mid, AlarmType[kind]) for mid in ids])
