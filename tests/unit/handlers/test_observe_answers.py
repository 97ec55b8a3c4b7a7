"""An answer counts for the member that gave it, never for the one whose address was asked."""

from __future__ import annotations

import pytest

from etcd_operator.etcd import ClusterMembers, EndpointHealth, EtcdUnreachable
from etcd_operator.etcd._channels import resolve
from etcd_operator.etcd.types import Member, MemberStatus
from etcd_operator.handlers.access import EtcdAccess
from etcd_operator.handlers.observe import _observe_etcd
from unit.support.clusters import make_cluster

DOMAIN = "cluster.local"


def _url(i: int) -> str:
    return f"http://demo-{i}.demo.ns.svc.{DOMAIN}:2379"


def _peer(i: int) -> str:
    return _url(i).replace("2379", "2380")


def _status(endpoint: str, member_id: int, leader: int) -> MemberStatus:
    return MemberStatus(
        endpoint=endpoint, member_id=member_id, cluster_id=1, version="3.6.16", db_size=1,
        db_size_in_use=1, leader=leader, raft_index=5, raft_term=2, raft_applied_index=5,
        errors=(), is_learner=False, revision=1,
    )  # fmt: skip


class _Etcd:
    """Member 0x2's address leads to member 0x1 (the leader is 0x2)."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    async def member_list(self) -> ClusterMembers:
        members = tuple(
            Member(
                i, f"demo-{i - 1}", (_url(i - 1).replace("2379", "2380"),), (_url(i - 1),), False
            )
            for i in (1, 2, 3)
        )
        return ClusterMembers(cluster_id=1, responder_id=1, members=members)

    async def health(self, endpoint: str) -> EndpointHealth:
        answering = {_url(0): 1, _url(1): 1, _url(2): 3}[endpoint]
        return EndpointHealth(endpoint, True, 0.01, None, _status(endpoint, answering, 2))

    async def forget(self, endpoint: str) -> None:
        self.forgotten.append(endpoint)

    async def auth_status(self) -> object:
        class _Off:
            enabled = False

        return _Off()


async def test_an_answer_from_another_member_is_not_that_members_health() -> None:
    etcd = _Etcd()
    cluster = make_cluster(replicas=3)
    seen = await _observe_etcd(etcd, cluster, DOMAIN, EtcdAccess(cluster.spec.tls.member_tls()))  # type: ignore[arg-type]
    asked = seen.health[2]
    assert (
        not asked.healthy and asked.status is None and "answered as member 1" in (asked.error or "")
    )
    assert seen.health[1].healthy and seen.health[3].healthy
    assert etcd.forgotten == [_url(1)]  # dialled afresh next round


async def test_a_name_that_does_not_resolve_yet_is_unreachable_not_left_to_grpc() -> None:
    with pytest.raises(EtcdUnreachable):
        await resolve("no-such-member.invalid:2379")
    assert await resolve("127.0.0.1:2379") == "127.0.0.1:2379"
