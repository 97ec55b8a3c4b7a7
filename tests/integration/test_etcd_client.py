"""The etcd client against real etcd processes on loopback (no mocks)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from aetcd import rpc as pb
from etcd_procs import EtcdBinarySet, LocalEtcdCluster, free_port

from etcd_operator.etcd import (
    AlarmType,
    EtcdClient,
    EtcdTimeout,
    EtcdUnavailable,
    EtcdUnreachable,
    LearnerNotReady,
    MemberNotFound,
    MemberNotLearner,
    MemberStatus,
    NoSpace,
    NotLeader,
    NotSupportedForLearner,
    ReconfigurationRejected,
    TooManyLearners,
)

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    within: float = 20.0,
) -> T:
    """Retry ``fn`` while it raises one of ``on`` (conditions etcd clears by itself)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await fn()
        except on:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def leader_and_followers(client: EtcdClient) -> tuple[MemberStatus, list[MemberStatus]]:
    statuses = [s for s in (await client.statuses()).values() if isinstance(s, MemberStatus)]
    leaders = [s for s in statuses if s.is_leader]
    assert len(leaders) == 1, statuses
    return leaders[0], [s for s in statuses if not s.is_leader]


async def run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"{args}: {err.decode()}"
    return out.decode()


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


# ---- one member ----------------------------------------------------------------------------


async def test_single_member_list_status_health(
    etcd1: LocalEtcdCluster, etcd_bins_checked: EtcdBinarySet
) -> None:
    async with EtcdClient(etcd1.config()) as client:
        members = await client.member_list()
        (m,) = members.members
        assert m.name == "m0" and m.started and not m.is_learner
        assert m.client_urls == etcd1.endpoints
        assert m.peer_urls == (etcd1.members["m0"].peer_url,)
        assert members.responder_id == m.id and members.cluster_id != 0
        assert members.voters == (m,) and members.learners == ()

        status = await client.status(etcd1.endpoints[0])
        assert status.is_leader and status.member_id == m.id
        assert status.cluster_id == members.cluster_id
        assert status.version == etcd_bins_checked.version
        assert 0 < status.db_size_in_use <= status.db_size
        assert status.raft_applied_index > 0 and status.raft_term > 0
        assert status.errors == () and not status.is_learner

        (health,) = await client.health_all()
        assert health.healthy and health.error is None
        assert health.status is not None and health.status.member_id == m.id


async def test_put_get(etcd1: LocalEtcdCluster) -> None:
    async with EtcdClient(etcd1.config()) as client:
        assert await client.get("missing") is None
        rev = await client.put("k", "v1")
        kv = await client.get(b"k")
        assert kv is not None
        assert (kv.key, kv.value, kv.mod_revision, kv.version) == (b"k", b"v1", rev, 1)
        rev2 = await client.put(b"k", b"v2")
        kv2 = await client.get("k", serializable=True, endpoint=etcd1.endpoints[0])
        assert kv2 is not None and kv2.value == b"v2" and rev2 > rev and kv2.version == 2


async def test_snapshot_streams_a_valid_snapshot(
    etcd1: LocalEtcdCluster, etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> None:
    async with EtcdClient(etcd1.config()) as client:
        for i in range(100):
            rev = await client.put(f"key-{i:03}", "x" * 1000)
        path = etcd_tmp / "snap.db"
        digest = hashlib.sha256()
        async with client.snapshot(etcd1.endpoints[0]) as stream:
            with path.open("wb") as f:
                async for chunk in stream:
                    f.write(chunk)
                    digest.update(chunk)
        assert stream.size == path.stat().st_size > 100 * 1000
        assert stream.sha256 == digest.hexdigest()
        assert stream.remaining_bytes == 0

    etcdutl = str(etcd_bins_checked.etcdutl)
    info = json.loads(await run(etcdutl, "snapshot", "status", str(path), "-w", "json"))
    assert info["revision"] == rev and info["totalKey"] >= 100
    # restore checks the sha256 trailer etcd appended (fails on a truncated stream)
    await run(etcdutl, "snapshot", "restore", str(path), "--data-dir", str(etcd_tmp / "restored"))


async def test_snapshot_stopped_early_cancels_the_call(etcd1: LocalEtcdCluster) -> None:
    async with EtcdClient(etcd1.config()) as client:
        async with client.snapshot(etcd1.endpoints[0]) as stream:
            async for _chunk in stream:
                break
        assert stream.sha256 is None  # not verified: never reached the end
        # the member is fine afterwards
        assert (await client.health(etcd1.endpoints[0])).healthy


async def test_a_snapshot_times_out_only_on_a_silent_member_not_a_slow_reader(
    etcd1: LocalEtcdCluster,
) -> None:
    (name,) = etcd1.members
    endpoint = etcd1.endpoints[0]
    async with EtcdClient(etcd1.config(snapshot_chunk_timeout=1.0)) as client:
        value = b"v" * 1024 * 1024
        for i in range(32):  # more than gRPC's window and the sockets hold
            await client.put(f"big-{i:02}", value)
        # A reader slower than the timeout between chunks is fine: only a read that
        # waits for data counts.
        async with client.snapshot(endpoint) as stream:
            async for _chunk in stream:
                if stream.size < 64 * 1024:
                    await asyncio.sleep(1.5)
        assert stream.sha256 is not None
        # A member that stops sending mid-stream fails the read once it waited that long.
        start = 0.0
        with pytest.raises(EtcdTimeout):
            async with client.snapshot(endpoint) as stream:
                async for _chunk in stream:
                    if not start:
                        etcd1.freeze(name)
                        start = time.monotonic()
        waited = time.monotonic() - start
        etcd1.thaw(name)
        assert 0.9 < waited < 5.0
        assert (await client.health(endpoint)).healthy


async def test_nospace_alarm_list_and_disarm(
    etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> None:
    cluster = LocalEtcdCluster(
        etcd_bins_checked, etcd_tmp, extra_flags=("--quota-backend-bytes=1048576",)
    )
    cluster.start_initial(1)
    try:
        async with EtcdClient(cluster.config()) as client:
            await cluster.wait_healthy(client)
            assert await client.alarms() == ()
            with pytest.raises(NoSpace):
                for i in range(200):
                    await client.put(f"big-{i}", b"x" * 64 * 1024)
            member_id = (await client.status(cluster.endpoints[0])).member_id
            (alarm,) = await client.alarms()
            assert alarm.member_id == member_id and alarm.alarm is AlarmType.NOSPACE
            status = await client.status(cluster.endpoints[0])
            assert any("NOSPACE" in e for e in status.errors)
            assert await client.disarm_alarms() == (alarm,)
            assert await client.alarms() == ()
    finally:
        cluster.stop_all()


# ---- three members -------------------------------------------------------------------------


async def test_member_list_three(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    members = await client3.member_list()
    assert sorted(m.name for m in members.members) == ["m0", "m1", "m2"]
    assert all(m.started and not m.is_learner for m in members.members)
    assert {m.client_urls[0] for m in members.members} == set(etcd3.endpoints)
    by_name = members.by_name("m1")
    assert by_name is not None and members.by_id(by_name.id) == by_name
    assert by_name.id_hex == f"{by_name.id:x}"


async def test_status_per_endpoint(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    members = await client3.member_list()
    statuses = await client3.statuses()
    assert set(statuses) == set(etcd3.endpoints)
    ids = set()
    for endpoint, status in statuses.items():
        assert isinstance(status, MemberStatus)
        member = members.by_id(status.member_id)
        # each endpoint answers for itself, not for the cluster
        assert member is not None and member.client_urls == (endpoint,)
        ids.add(status.member_id)
    assert len(ids) == 3
    leaders = {s.leader for s in statuses.values() if isinstance(s, MemberStatus)}
    assert len(leaders) == 1 and leaders <= ids


async def test_health_all(client3: EtcdClient) -> None:
    health = await client3.health_all()
    assert len(health) == 3 and all(h.healthy for h in health), health


async def test_add_learner_catch_up_promote(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    for i in range(50):
        await client3.put(f"k{i}", "v" * 100)
    new = etcd3.new_member("m3")
    # etcd < 3.5.? applies its quorum guard to learners too: refused until peers have
    # been connected for a few seconds
    added = await retry(
        lambda: client3.member_add([new.peer_url], learner=True), on=(ReconfigurationRejected,)
    )
    learner_id = added.member.id
    assert added.member.is_learner and not added.member.started
    assert added.member.peer_urls == (new.peer_url,)
    assert len(added.members.members) == 4
    listed = (await client3.member_list()).by_id(learner_id)
    assert listed is not None and listed.is_learner and not listed.started

    # etcd allows one learner at a time
    with pytest.raises(TooManyLearners):
        await client3.member_add([f"http://127.0.0.1:{free_port()}"], learner=True)

    initial = ",".join(f"{m.name or new.name}={m.peer_urls[0]}" for m in added.members.members)
    etcd3.start(new, initial, "existing")

    async def caught_up() -> bool:
        try:
            mine = await client3.status(new.client_url)
        except EtcdUnavailable:
            return False
        leader, _ = await leader_and_followers(client3)
        return mine.is_learner and mine.raft_applied_index >= leader.raft_index - 1

    await wait_until(caught_up)
    health = await client3.health(new.client_url)
    assert health.healthy and health.status is not None and health.status.is_learner
    # a learner refuses linearizable requests
    with pytest.raises(NotSupportedForLearner):
        await client3.get("k1", endpoint=new.client_url)
    # ...which the cluster-wide calls pass over to a voter
    async with EtcdClient(etcd3.config(endpoints=(new.client_url, *etcd3.endpoints[:3]))) as c:
        assert len((await c.member_list()).members) == 4

    promoted = await retry(lambda: client3.member_promote(learner_id), on=(LearnerNotReady,))
    member = promoted.by_id(learner_id)
    assert member is not None and not member.is_learner
    members = await client3.member_list()
    assert len(members.voters) == 4 and members.learners == ()
    assert (await client3.status(new.client_url)).is_learner is False
    with pytest.raises(MemberNotLearner):
        await client3.member_promote(learner_id)
    with pytest.raises(MemberNotFound):
        await client3.member_promote(12345)


async def test_remove_member(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    _, followers = await leader_and_followers(client3)
    victim = followers[0]
    # etcd's strict reconfig check refuses until peers have been connected for a while
    members = await retry(
        lambda: client3.member_remove(victim.member_id), on=(ReconfigurationRejected,)
    )
    assert members.by_id(victim.member_id) is None and len(members.members) == 2
    listed = await client3.member_list()
    assert {m.id for m in listed.members} == {m.id for m in members.members}
    with pytest.raises(MemberNotFound):
        await client3.member_remove(victim.member_id)


async def test_move_leader(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    old, followers = await leader_and_followers(client3)
    target = followers[0]
    await client3.move_leader(target.member_id)

    async def moved() -> bool:
        leader, _ = await leader_and_followers(client3)
        return leader.member_id == target.member_id

    await wait_until(moved)
    await client3.move_leader(target.member_id)  # already leader: no-op
    # MoveLeader sent to a non-leader is refused with NotLeader
    with pytest.raises(NotLeader):
        await client3._unary(
            old.endpoint,
            "maintenance",
            "MoveLeader",
            pb.MoveLeaderRequest(targetID=old.member_id),
            None,
        )


async def test_hash_kv_equal_across_members(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    for i in range(30):
        rev = await client3.put(f"h{i}", str(i))

    async def applied() -> bool:
        statuses = await client3.statuses()
        return all(isinstance(s, MemberStatus) and s.revision >= rev for s in statuses.values())

    await wait_until(applied)
    hashes = [await client3.hash_kv(e, revision=rev) for e in etcd3.endpoints]
    assert len({h.hash for h in hashes}) == 1, hashes
    assert all(h.revision == rev for h in hashes)
    assert len({h.member_id for h in hashes}) == 3
    latest = await client3.hash_kv(etcd3.endpoints[0])
    assert latest.revision >= rev


async def test_defragment_follower(etcd3: LocalEtcdCluster, client3: EtcdClient) -> None:
    for i in range(200):
        await client3.put(f"d{i % 20}", "y" * 2000)
    _, followers = await leader_and_followers(client3)
    follower = followers[0]
    await client3.defragment(follower.endpoint)
    after = await client3.status(follower.endpoint)
    # bbolt rewrites the file on defragment, so its size may even grow on a tiny database;
    # what matters is that the member serves again and nothing was lost
    assert after.raft_applied_index >= follower.raft_applied_index
    assert 0 < after.db_size_in_use <= after.db_size
    kv = await client3.get("d19", serializable=True, endpoint=follower.endpoint)
    assert kv is not None and kv.value == b"y" * 2000
    assert all(h.healthy for h in await client3.health_all())


async def test_alarms_empty(client3: EtcdClient) -> None:
    assert await client3.alarms() == ()
    assert await client3.disarm_alarms() == ()


# ---- failures and timeouts -----------------------------------------------------------------


async def test_frozen_member_times_out_instead_of_hanging(etcd3: LocalEtcdCluster) -> None:
    victim = etcd3.members["m2"]
    others = [e for e in etcd3.endpoints if e != victim.client_url]
    config = etcd3.config(
        endpoints=(victim.client_url, *others), dial_timeout=1.0, request_timeout=2.0
    )
    async with EtcdClient(config) as client:
        await client.status(victim.client_url)  # channel connected before the freeze
        etcd3.freeze("m2")
        try:
            start = time.monotonic()
            with pytest.raises(EtcdTimeout):
                await client.status(victim.client_url)
            assert time.monotonic() - start < 2.0 + 1.0

            # a new connection to it gets no HTTP/2 handshake: the dial timeout bounds it
            start = time.monotonic()
            with pytest.raises(EtcdUnreachable):
                await client.status(victim.client_url)
            assert time.monotonic() - start < 1.0 + 1.0

            health = await client.health(victim.client_url)
            assert not health.healthy and health.error is not None

            # cluster-wide calls move on to the live members, reads and writes alike
            assert len((await client.member_list()).members) == 3
            await client.put("while-frozen", "ok")
        finally:
            etcd3.thaw("m2")
        # and the member is usable again once it resumes (the stale channel was dropped)
        await etcd3.wait_healthy(client)


async def test_stopped_member_is_unreachable_fast(etcd1: LocalEtcdCluster) -> None:
    endpoint = etcd1.endpoints[0]
    async with EtcdClient(etcd1.config(dial_timeout=2.0, request_timeout=3.0)) as client:
        await client.status(endpoint)
        etcd1.stop("m0")
        start = time.monotonic()
        with pytest.raises(EtcdUnavailable):
            await client.status(endpoint)
        with pytest.raises(EtcdUnavailable):
            await client.member_list()
        with pytest.raises(EtcdUnavailable):
            await client.put("k", "v")
        assert time.monotonic() - start < 3 * 2.0


async def test_with_a_voter_down_etcd_refuses_a_learner_until_the_dead_member_is_removed(
    etcd3: LocalEtcdCluster, client3: EtcdClient
) -> None:
    """etcd's strict reconfig check counts the new member as a voter that is down, even for a
    learner: with 1 of 3 members down it refuses MemberAdd. Replacing a dead member therefore
    means removing it first (allowed: a member that is down is not part of the quorum)."""
    dead = (await client3.member_list()).by_name("m2")
    assert dead is not None
    await asyncio.sleep(5.5)  # past etcd's HealthInterval, so connectivity is what counts
    etcd3.stop("m2")
    await asyncio.sleep(1)
    with pytest.raises(ReconfigurationRejected):
        await client3.member_add([f"http://127.0.0.1:{free_port()}"], learner=True)
    members = await retry(
        lambda: client3.member_remove(dead.id), on=(ReconfigurationRejected,), within=10
    )
    assert len(members.members) == 2
    added = await retry(
        lambda: client3.member_add([f"http://127.0.0.1:{free_port()}"], learner=True),
        on=(ReconfigurationRejected,),
        within=15,
    )
    assert added.member.is_learner
