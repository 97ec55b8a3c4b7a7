"""NOSPACE recovery against real etcd: a cluster filled to a small quota is driven by the
planner's space rules and the shell's `apply_space` (compact, defragment one member at a time,
disarm) until it accepts writes again; one whose live data fills the quota is left alarmed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from etcd_procs import EtcdBinarySet, LocalEtcdCluster

from etcd_operator.etcd import EtcdClient
from etcd_operator.etcd.errors import NoSpace
from etcd_operator.handlers.space import apply_space
from etcd_operator.naming import MAX_REPLICAS
from etcd_operator.planner import (
    ClusterRef,
    Compact,
    Defragment,
    DefragRun,
    Degraded,
    DesiredSpec,
    DisarmAlarm,
    EtcdMember,
    MemberHealth,
    Observed,
    PodState,
    PvcState,
    Reason,
    SpaceState,
    Step,
    Wait,
    decide,
)

QUOTA = 16 * 1024**2
VALUE = b"x" * (256 * 1024)
NAME = "it"


async def _cluster(bins: EtcdBinarySet, root: Path, size: int) -> AsyncIterator[LocalEtcdCluster]:
    cluster = LocalEtcdCluster(bins, root, extra_flags=(f"--quota-backend-bytes={QUOTA}",))
    cluster.start_initial(size)
    try:
        async with EtcdClient(cluster.config()) as client:
            await cluster.wait_healthy(client)
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
async def small3(
    etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> AsyncIterator[LocalEtcdCluster]:
    async for c in _cluster(etcd_bins_checked, etcd_tmp, 3):
        yield c


@pytest.fixture
async def small1(
    etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> AsyncIterator[LocalEtcdCluster]:
    async for c in _cluster(etcd_bins_checked, etcd_tmp, 1):
        yield c


async def fill(client: EtcdClient, keys: int) -> int:
    """Put 256 KiB values over `keys` keys in turn until etcd refuses with NOSPACE."""
    for n in range(10 * QUOTA // len(VALUE)):
        try:
            await client.put(f"k{n % keys}", VALUE)
        except NoSpace:
            return n
    raise AssertionError("the quota was never reached")


async def observe(client: EtcdClient, space: SpaceState) -> tuple[Observed, dict[int, object]]:
    """What the shell's observe reads, from the real members (names by start order)."""
    members = await client.member_list()
    ordered = sorted(members.members, key=lambda m: m.name)
    names = {m.id: f"{NAME}-{i}" for i, m in enumerate(ordered)}
    urls = {f"{NAME}-{i}": f"http://unused-{i}:2380" for i in range(MAX_REPLICAS)}
    urls.update({names[m.id]: m.peer_urls[0] for m in ordered})
    health = {h.status.member_id: h for h in await client.health_all() if h.status}
    alarms = tuple((a.member_id, a.alarm.name) for a in await client.alarms())
    version = next(h.status.version for h in health.values() if h.status)
    o = Observed(
        cluster=ClusterRef(NAME, "ns", "uid"),
        generation=1,
        spec=DesiredSpec(replicas=len(ordered), version=version),
        bootstrapped=True,
        members=tuple(
            EtcdMember(m.id, names[m.id], m.peer_urls, m.client_urls, m.is_learner) for m in ordered
        ),
        expected_peer_urls=urls,
        member_health={
            mid: MemberHealth(
                reachable=True,
                healthy=h.healthy,
                version=h.status.version,
                raft_index=h.status.raft_index,
                applied_index=h.status.raft_applied_index,
                db_size=h.status.db_size,
                is_leader=h.status.is_leader,
                db_size_in_use=h.status.db_size_in_use,
            )
            for mid, h in health.items()
            if h.status is not None
        },
        pods={names[m.id]: PodState(version=version) for m in ordered},
        pvcs={
            names[m.id]: PvcState(claim=names[m.id], cluster_uid="uid", member_id=m.id)
            for m in ordered
        },
        now=datetime.now(UTC),
        space=dataclasses.replace(space, alarms=alarms, quota=QUOTA),
    )
    return o, health


async def recover(client: EtcdClient, led: list[int] | None = None) -> list[Step]:
    """Rounds of decide -> apply_space, recording in `space` what status would, to a steady
    state; the steps taken. `led`: members defragmented while they led."""
    space, taken, led = SpaceState(), [], led if led is not None else []
    for _ in range(50):
        o, health = await observe(client, space)
        d = decide(o)
        if isinstance(d.step, Wait):
            await asyncio.sleep(0.2)  # e.g. members still applying the compaction
            continue
        if not isinstance(d.step, Compact | Defragment | DisarmAlarm):
            taken.append(d.step)
            return taken
        if isinstance(d.step, Defragment) and o.member_health[d.step.member_id].is_leader:
            led.append(d.step.member_id)
        await apply_space(client, health, d.step)  # type: ignore[arg-type]
        taken.append(d.step)
        now = datetime.now(UTC)
        match d.step:
            case Compact():
                space = dataclasses.replace(space, compacted_at=now, db_size_before=QUOTA)
            case Defragment(member=name):
                run = space.last_defrag
                done = (*run.members, name) if run and not d.step.new_run else (name,)
                space = dataclasses.replace(space, last_defrag=DefragRun("NoSpace", now, done))
            case _:
                pass
    raise AssertionError(f"no steady state after {taken}")


async def test_a_cluster_filled_to_its_quota_recovers_and_accepts_writes(
    small3: LocalEtcdCluster,
) -> None:
    async with EtcdClient(small3.config(defragment_timeout=60.0)) as client:
        await fill(client, keys=8)
        # What makes the shell read etcd's alarm list: members report it in their status.
        statuses = [s for s in (await client.statuses()).values() if not isinstance(s, Exception)]
        assert any(any("NOSPACE" in e for e in s.errors) for s in statuses), statuses
        led: list[int] = []
        steps = await recover(client, led)
        kinds = [type(s).__name__ for s in steps]
        assert kinds[0] == "Compact" and kinds[-2:] == ["DisarmAlarm", "InSync"], kinds
        defragmented = [s.member_id for s in steps if isinstance(s, Defragment)]
        assert len(set(defragmented)) == 3, "every member once (again only if it lagged)"
        assert all(m == defragmented[-1] for m in led), "the leader last"
        assert await client.alarms() == ()
        await client.put("after", b"accepted")
        assert (await client.get("after")) is not None
        statuses = [s for s in (await client.statuses()).values() if not isinstance(s, Exception)]
        assert all(s.db_size < QUOTA // 2 for s in statuses), statuses


async def test_live_data_filling_the_quota_stays_alarmed_with_the_reason(
    small1: LocalEtcdCluster,
) -> None:
    async with EtcdClient(small1.config(defragment_timeout=60.0)) as client:
        await fill(client, keys=10_000)  # every value live: nothing to compact away
        steps = await recover(client)
        assert [type(s).__name__ for s in steps] == ["Compact", "Defragment", "Degraded"]
        assert steps[-1] == Degraded(Reason.NO_SPACE)
        assert [a.alarm.name for a in await client.alarms()] == ["NOSPACE"]
        with pytest.raises(NoSpace):
            await client.put("more", VALUE)
