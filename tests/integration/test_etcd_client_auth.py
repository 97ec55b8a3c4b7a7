"""etcd authentication through the client against real etcd: turning it on and off, and every
call the operator makes with it on (anonymous callers refused, root accepted)."""

from __future__ import annotations

import pytest
from etcd_procs import LocalEtcdCluster
from test_etcd_client import retry, wait_until
from test_etcd_client_security import TLSCluster, tls_etcd  # noqa: F401 - fixture

from etcd_operator.etcd import (
    AuthError,
    Credentials,
    EtcdClient,
    EtcdError,
    LearnerNotReady,
    ReconfigurationRejected,
    RootUserMissing,
    UserExists,
)
from etcd_operator.handlers.auth import enable_auth

pytestmark = pytest.mark.timeout(120)

PASSWORD = "pw-" + "x" * 40


async def _enable(client: EtcdClient, password: str = PASSWORD) -> None:
    await client.user_add("root", password)
    await client.user_grant_role("root", "root")
    await client.auth_enable()


async def test_auth_is_enabled_and_disabled_through_the_client(etcd1: LocalEtcdCluster) -> None:
    async with EtcdClient(etcd1.config()) as anon:
        assert not (await anon.auth_status()).enabled
        with pytest.raises(RootUserMissing):
            await anon.auth_enable()  # etcd needs root with role root first
        await anon.user_add("root", "first")
        with pytest.raises(UserExists):
            await anon.user_add("root", PASSWORD)
        await anon.user_change_password("root", PASSWORD)
        await anon.user_change_password("root", PASSWORD)  # idempotent
        with pytest.raises(RootUserMissing):
            await anon.auth_enable()  # root exists but lacks role root
        await anon.user_grant_role("root", "root")
        await anon.user_grant_role("root", "root")  # etcd ignores a grant already held
        await anon.auth_enable()
        # From now on etcd refuses anonymous calls; the refusal itself says auth is on.
        with pytest.raises(AuthError, match="user name is empty"):
            await anon.auth_status()
    root = Credentials("root", PASSWORD)
    async with EtcdClient(etcd1.config(credentials=root)) as client:
        assert (await client.auth_status()).enabled
        await client.auth_enable()  # idempotent for root
        await client.auth_disable()
        assert not (await client.auth_status()).enabled
        await client.auth_disable()
    async with EtcdClient(etcd1.config()) as anon:
        assert await anon.put("open", "again") > 0


async def test_credentials_work_before_and_after_auth_is_enabled(etcd1: LocalEtcdCluster) -> None:
    """The operator's client carries root's credentials from the start: while auth is off it
    calls without a token, and once auth is on it authenticates on etcd's first refusal."""
    root = Credentials("root", PASSWORD)
    async with EtcdClient(etcd1.config(credentials=root)) as client:
        assert await client.put("k", "before") > 0
        await _enable(client)
        assert await client.put("k", "after") > 0  # same client, same channel
        assert (await client.auth_status()).enabled


async def test_every_operator_call_needs_and_works_with_root(etcd3: LocalEtcdCluster) -> None:
    endpoint = etcd3.endpoints[0]
    async with EtcdClient(etcd3.config()) as anon:
        await _enable(anon)
    async with EtcdClient(etcd3.config()) as anon:
        # etcd (3.5 and 3.6) refuses every call the operator makes to an anonymous client.
        refused = {
            "member_list": anon.member_list(),
            "status": anon.status(endpoint),
            "alarms": anon.alarms(),
            "auth_status": anon.auth_status(),
            "put": anon.put("k", "v"),
            "member_add": anon.member_add(["http://127.0.0.1:1"]),
            "hash_kv": anon.hash_kv(endpoint),
        }
        for call, coro in refused.items():
            with pytest.raises(AuthError):
                await coro
                pytest.fail(f"{call} was accepted anonymously")
        assert not (await anon.health(endpoint)).healthy
    async with EtcdClient(etcd3.config(credentials=Credentials("root", PASSWORD))) as root:
        members = await root.member_list()
        assert len(members.voters) == 3
        assert all(h.healthy for h in await root.health_all())
        assert await root.alarms() == ()
        # etcd's strict reconfig check refuses for a while after members connect.
        added = await retry(
            lambda: root.member_add(["http://127.0.0.1:1"], learner=True),
            on=(ReconfigurationRejected,),
        )
        await retry(lambda: root.member_remove(added.member.id), on=(ReconfigurationRejected,))
        assert len((await root.member_list()).members) == 3
        statuses = await root.statuses()
        leader = next(s.leader for s in statuses.values() if not isinstance(s, EtcdError))
        follower = next(m.id for m in members.members if m.id != leader)
        await root.move_leader(follower)


async def test_a_wrong_password_is_refused_and_never_shown(etcd1: LocalEtcdCluster) -> None:
    async with EtcdClient(etcd1.config()) as anon:
        await _enable(anon)
    wrong = "wrong-" + "y" * 40
    config = etcd1.config(credentials=Credentials("root", wrong))
    assert wrong not in repr(config) and wrong not in str(config)
    async with EtcdClient(config) as client:
        with pytest.raises(AuthError) as refused:
            await client.member_list()
    assert "authentication failed" in str(refused.value)
    assert wrong not in str(refused.value) and wrong not in repr(refused.value)


@pytest.mark.parametrize("done", [0, 1, 2], ids=["none", "user-added", "role-granted"])
async def test_enabling_auth_resumes_after_a_kill_between_its_calls(
    etcd1: LocalEtcdCluster, done: int
) -> None:
    """The EnableAuth step's calls as the operator makes them, after an earlier attempt was
    killed having made `done` of them (its etcd auth status still says off, so the planner
    takes the step again). A user root made by someone else gets the Secret's password."""
    root = Credentials("root", PASSWORD)
    async with EtcdClient(etcd1.config(credentials=root)) as client:
        if done >= 1:
            await client.user_add("root", "from-an-earlier-attempt-or-a-human")
        if done >= 2:
            await client.user_grant_role("root", "root")
        assert not (await client.auth_status()).enabled
        await enable_auth(client, root)
        assert (await client.auth_status()).enabled
    async with EtcdClient(etcd1.config()) as anon:
        with pytest.raises(AuthError):
            await anon.put("k", "v")


async def test_a_learner_is_observed_and_promoted_with_auth_on(etcd3: LocalEtcdCluster) -> None:
    """A learner refuses Authenticate (it goes through raft), yet applies the tokens voters
    hand out: the client gets the learner's token through a voter, so the operator sees the
    learner's status and health and can promote it."""
    root = Credentials("root", PASSWORD)
    async with EtcdClient(etcd3.config(credentials=root)) as client:
        await _enable(client)
        new = etcd3.new_member("m3")
        added = await retry(
            lambda: client.member_add([new.peer_url], learner=True), on=(ReconfigurationRejected,)
        )
        initial = ",".join(f"{m.name or new.name}={m.peer_urls[0]}" for m in added.members.members)
        etcd3.start(new, initial, "existing")

        async def learner_healthy() -> bool:
            return (await client.health(new.client_url)).healthy

        await wait_until(learner_healthy)
        status = await client.status(new.client_url)
        assert status.is_learner
        await retry(lambda: client.member_promote(added.member.id), on=(LearnerNotReady,))
        assert len((await client.member_list()).voters) == 4


async def test_with_client_certificates_root_is_the_certificate_or_the_password(
    tls_etcd: TLSCluster,  # noqa: F811 - the fixture imported above
) -> None:
    """With client-cert auth etcd takes the user from the certificate's CN when no token is
    sent, and the token when one is: the operator's certificate (CN root) and root's password
    both get in, so the operator may always send its credentials."""
    cluster = tls_etcd.cluster
    async with EtcdClient(cluster.config()) as by_cert:
        await _enable(by_cert)
        assert (await by_cert.auth_status()).enabled  # CN root, no token
    async with EtcdClient(cluster.config(credentials=Credentials("root", PASSWORD))) as both:
        assert await both.put("k", "v") > 0
        assert (await both.health(cluster.endpoints[0])).healthy
    async with EtcdClient(cluster.config(credentials=Credentials("root", "wrong"))) as bad:
        with pytest.raises(AuthError):
            await bad.put("k", "v")  # a token is asked for first, and refused
