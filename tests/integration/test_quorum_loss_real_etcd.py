"""Quorum lost for good, on real etcd: two of three members stopped and their data dirs wiped.

What the operator's shell relies on, end to end on real processes: the survivor still answers
its own member list and raft position without a quorum (the planner's `LocalView`); the planner
picks it; `--force-new-cluster` keeps its data and ID and makes it the only member; restarted
without the flag it stays so; the others rejoin as learners on empty data dirs, are promoted,
and every key written before the loss reads back from each of the three members.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from etcd_procs import LocalEtcdCluster

from etcd_operator.etcd import (
    AuthError,
    Credentials,
    EtcdClient,
    EtcdError,
    LearnerNotReady,
    ReconfigurationRejected,
)
from etcd_operator.naming import MAX_REPLICAS, member_name
from etcd_operator.planner import (
    ClusterRef,
    DesiredSpec,
    EtcdMember,
    ForceNewCluster,
    LocalView,
    Observed,
    PodState,
    PvcState,
    decide,
)

T = TypeVar("T")
KEYS = 40


async def _retry(call: Callable[[], Awaitable[T]], within: float = 30.0) -> T:
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except (EtcdError, ReconfigurationRejected, LearnerNotReady):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def _local_view(client: EtcdClient, endpoint: str) -> LocalView:
    status = await client.status(endpoint)
    members = await client.local_member_list(endpoint)
    return LocalView(
        status.member_id,
        tuple(
            EtcdMember(m.id, m.name, m.peer_urls, m.client_urls, m.is_learner)
            for m in members.members
        ),
        status.raft_term,
        status.raft_index,
        status.raft_applied_index,
    )


def _observed(etcd: LocalEtcdCluster, views: dict[str, LocalView], ids: list[int]) -> Observed:
    """The planner's input as observe builds it now: no member list answers, m1 and m2's
    member-init refuse (their volumes lost their logs), m0's etcd answers alone."""
    names = [member_name("etcd", i) for i in range(MAX_REPLICAS)]
    urls = {n: f"http://127.0.0.1:{1 + i}" for i, n in enumerate(names)}
    urls.update({names[i]: etcd.members[f"m{i}"].peer_url for i in range(3)})
    return Observed(
        cluster=ClusterRef("etcd", "ns", "uid"),
        generation=1,
        spec=DesiredSpec(replicas=3, version="3.5.17", quorum_loss="FromSurvivor"),
        bootstrapped=True,
        members=None,
        expected_peer_urls=urls,
        pods={
            names[0]: PodState(ready=False, version="3.5.17"),
            names[1]: PodState(ready=False, data_lost=True, version="3.5.17"),
            names[2]: PodState(ready=False, data_lost=True, version="3.5.17"),
        },
        pvcs={
            names[i]: PvcState(claim=names[i], cluster_uid="uid", member_id=ids[i])
            for i in range(3)
        },
        local_views=views,
    )


async def test_force_new_cluster_from_the_survivor_then_readd(etcd3: LocalEtcdCluster) -> None:
    async with EtcdClient(etcd3.config()) as client:
        for i in range(KEYS):
            await client.put(f"k{i}", f"v{i}")
        before = await client.member_list()
    ids = [next(m.id for m in before.members if m.name == f"m{i}") for i in range(3)]
    survivor = etcd3.members["m0"]
    for lost in ("m1", "m2"):
        etcd3.stop(lost)
        shutil.rmtree(etcd3.members[lost].data_dir)

    async with EtcdClient(etcd3.config(endpoints=(survivor.client_url,))) as client:
        # Without quorum: no linearizable member list, but the survivor's own view answers.
        try:
            await client.member_list()
            raise AssertionError("a linearizable member list answered without quorum")
        except EtcdError:
            pass
        view = await _retry(lambda: _local_view(client, survivor.client_url))
        assert view.member_id == ids[0] and {m.id for m in view.members} == set(ids)

    step = decide(_observed(etcd3, {member_name("etcd", 0): view}, ids)).step
    assert isinstance(step, ForceNewCluster)
    assert step.member == member_name("etcd", 0) and step.member_id == ids[0]

    # The forced start, as the pod built with the flag runs it.
    etcd3.stop("m0")
    survivor.flags = ("--force-new-cluster",)
    etcd3.start(survivor, f"m0={survivor.peer_url}", "existing")
    async with EtcdClient(etcd3.config(endpoints=(survivor.client_url,))) as client:
        alone = await _retry(client.member_list)
        assert [m.id for m in alone.members] == [ids[0]]  # its ID is kept
    # Rebuilt without the flag (a flagged restart would drop members added later).
    etcd3.stop("m0")
    survivor.flags = ()
    etcd3.start(survivor, f"m0={survivor.peer_url}", "existing")

    async with EtcdClient(etcd3.config(endpoints=(survivor.client_url,))) as client:
        assert [m.id for m in (await _retry(client.member_list)).members] == [ids[0]]
        for i in range(KEYS):
            kv = await client.get(f"k{i}")
            assert kv is not None and kv.value == f"v{i}".encode()
        # The lost members rejoin one at a time as learners on empty data dirs.
        for name in ("m1", "m2"):
            new = etcd3.new_member(f"{name}b")
            added = await _retry(lambda u=new.peer_url: client.member_add([u], learner=True))
            initial = ",".join(
                f"{m.name or new.name}={m.peer_urls[0]}" for m in added.members.members
            )
            etcd3.start(new, initial, "existing")
            await _retry(lambda i=added.member.id: client.member_promote(i), within=60)
        members = await client.member_list()
        assert len(members.voters) == 3 and members.learners == ()
    async with EtcdClient(etcd3.config(endpoints=etcd3.endpoints_running())) as client:
        for endpoint in etcd3.endpoints_running():
            for i in range(KEYS):
                kv = await _retry(lambda k=f"k{i}", e=endpoint: client.get(k, endpoint=e))
                assert kv is not None and kv.value == f"v{i}".encode(), (endpoint, i)


async def test_a_survivor_of_an_auth_cluster_answers_with_the_token_it_issued(
    etcd3: LocalEtcdCluster,
) -> None:
    """With auth on, Status needs a user, and a new token needs a quorum (Authenticate goes
    through raft): the operator's client, which took its token while a quorum answered, still
    gets the survivor's local view; a client without credentials does not."""
    async with EtcdClient(etcd3.config()) as client:
        await client.user_add("root", "secret")
        await client.user_grant_role("root", "root")
        await client.auth_enable()
    survivor = etcd3.members["m0"]
    root = Credentials("root", "secret")
    async with EtcdClient(etcd3.config(endpoints=(survivor.client_url,), credentials=root)) as c:
        await c.status(survivor.client_url)  # takes a token while a quorum answers
        for lost in ("m1", "m2"):
            etcd3.stop(lost)
        view = await _retry(lambda: _local_view(c, survivor.client_url))
        assert len(view.members) == 3 and view.raft_term > 0
    async with EtcdClient(etcd3.config(endpoints=(survivor.client_url,))) as bare:
        with pytest.raises(AuthError):
            await bare.status(survivor.client_url)
