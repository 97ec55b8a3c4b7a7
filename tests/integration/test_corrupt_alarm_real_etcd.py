"""etcd's CORRUPT alarm against real etcd: raised for the leader through etcd's own Alarm RPC,
the planner's rules (driven round by round with what the shell would observe, pods' readiness
being the members' real /readyz) move leadership away, remove the alarmed member and disarm
the alarm only then, after which the remaining members accept writes again."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from aetcd import rpc as pb
from etcd_procs import LocalEtcdCluster

from etcd_operator.etcd import EtcdClient, EtcdError
from etcd_operator.etcd.errors import ReconfigurationRejected
from etcd_operator.handlers.space import apply_space
from etcd_operator.naming import MAX_REPLICAS
from etcd_operator.planner import (
    AddLearner,
    ClusterRef,
    DeletePod,
    DesiredSpec,
    DisarmAlarm,
    EtcdMember,
    MemberHealth,
    MoveLeader,
    Observed,
    PodState,
    Reason,
    RemoveMember,
    SpaceState,
    Step,
    Wait,
    decide,
)

NAME = "it"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def raise_corrupt(client: EtcdClient, member_id: int) -> None:
    """What etcd's hash check does on a mismatch: Maintenance.Alarm(ACTIVATE, CORRUPT)."""
    conn = await client.connect(client.config.endpoints[0])
    request = pb.AlarmRequest(action=pb.AlarmRequest.ACTIVATE, memberID=member_id, alarm=pb.CORRUPT)
    await conn.stub("maintenance").Alarm(request, timeout=10)


async def observe(
    client: EtcdClient, cluster: LocalEtcdCluster
) -> tuple[Observed, dict[int, object]]:
    members = (await client.member_list()).members
    by_peer = {p.peer_url: (f"{NAME}-{i}", p) for i, p in enumerate(cluster.members.values())}
    urls = {f"{NAME}-{i}": f"http://unused-{i}:2380" for i in range(MAX_REPLICAS)}
    urls.update({n: peer for peer, (n, _) in by_peer.items()})
    running = [p for p in cluster.members.values() if p.running]
    health = {
        h.status.member_id: h
        for h in await client.health_all(tuple(p.client_url for p in running))
        if h.status
    }
    alarms = tuple((a.member_id, a.alarm.name) for a in await client.alarms())
    ready = {n: await asyncio.to_thread(_ready, p.client_url) for n, p in by_peer.values()}
    version = next(h.status.version for h in health.values() if h.status)
    o = Observed(
        cluster=ClusterRef(NAME, "ns", "uid"),
        generation=1,
        spec=DesiredSpec(replicas=3, version=version),
        bootstrapped=True,
        members=tuple(
            EtcdMember(m.id, by_peer[m.peer_urls[0]][0], m.peer_urls, m.client_urls, m.is_learner)
            for m in members
        ),
        expected_peer_urls=urls,
        member_health={
            mid: MemberHealth(
                reachable=True,
                healthy=h.healthy,
                version=h.status.version,
                raft_index=h.status.raft_index,
                applied_index=h.status.raft_applied_index,
                is_leader=h.status.is_leader,
                alarms=h.status.errors,
                revision=h.status.revision,
            )
            for mid, h in health.items()
            if h.status is not None
        },
        pods={
            n: PodState(version=version, ready=ready[n]) for n, p in by_peer.values() if p.running
        },
        space=SpaceState(alarms=alarms),
    )
    return o, dict(health)


async def drive(client: EtcdClient, cluster: LocalEtcdCluster) -> list[tuple[Step, Reason]]:
    """Rounds of observe -> decide -> apply until the planner adds a member back (the shell's
    job with a pod, out of scope here); the steps taken."""
    names = {f"{NAME}-{i}": p.name for i, p in enumerate(cluster.members.values())}
    taken: list[tuple[Step, Reason]] = []
    for _ in range(100):
        o, health = await observe(client, cluster)
        d = decide(o)
        taken.append((d.step, d.reason))
        match d.step:
            case MoveLeader(to_id=to):
                await client.move_leader(to)
            case RemoveMember(member_id=mid):
                try:
                    await client.member_remove(mid)
                except ReconfigurationRejected:
                    # etcd wants its peers connected for a while first: asked again.
                    taken.pop()
                    await asyncio.sleep(0.5)
            case DeletePod(member=name):
                cluster.stop(names[name])
            case DisarmAlarm():
                await apply_space(client, health, d.step)  # type: ignore[arg-type]
            case AddLearner():
                return taken
            case Wait():
                await asyncio.sleep(0.2)
            case _:
                raise AssertionError(f"unexpected {d}")
    raise AssertionError(f"no end after {taken}")


async def test_a_corrupt_leader_is_removed_then_the_alarm_disarmed_and_writes_resume(
    etcd3: LocalEtcdCluster,
) -> None:
    three = etcd3
    async with EtcdClient(three.config()) as client:
        await client.put("before", b"kept")
        statuses = {
            s.member_id: s
            for s in (await client.statuses()).values()
            if not isinstance(s, Exception)
        }
        leader = next(mid for mid, s in statuses.items() if s.is_leader)
        await raise_corrupt(client, leader)
        with pytest.raises(EtcdError, match="corrupt cluster"):
            await client.put("refused", b"x")
        # Every member's /readyz fails: readiness says nothing while CORRUPT is active.
        assert not any(_ready(p.client_url) for p in three.members.values())
        taken = await drive(client, three)
        # (a removed member's etcd exits by itself: its "pod" is usually gone by then)
        steps = [s for s, _ in taken if not isinstance(s, Wait | DeletePod)]
        kinds = [type(s).__name__ for s in steps]
        assert kinds == ["MoveLeader", "RemoveMember", "DisarmAlarm", "AddLearner"], taken
        assert isinstance(steps[1], RemoveMember) and steps[1].member_id == leader
        assert steps[2] == DisarmAlarm((leader,), "CORRUPT")
        assert await client.alarms() == ()
        await client.put("after", b"accepted")
        got = await client.get("before")
        assert got is not None and got.value == b"kept"
