"""Which member serves the snapshot (pure)."""

from __future__ import annotations

from etcd_operator.backup.member import candidates
from etcd_operator.etcd import ClusterMembers, Member, MemberStatus


def _member(i: int, learner: bool = False) -> Member:
    return Member(i, f"m{i}", (f"http://p{i}:2380",), (f"http://c{i}:2379",), learner)


def _status(i: int, leader: int, applied: int = 100, errors: tuple[str, ...] = ()) -> MemberStatus:
    return MemberStatus(
        endpoint=f"http://c{i}:2379", member_id=i, cluster_id=9, version="3.6.7", db_size=1,
        db_size_in_use=1, leader=leader, raft_index=applied, raft_term=2,
        raft_applied_index=applied, errors=errors, is_learner=False, revision=5,
    )  # fmt: skip


MEMBERS = ClusterMembers(9, 1, (_member(1), _member(2), _member(3), _member(4, learner=True)))


def test_followers_first_most_caught_up_first_the_leader_last_learners_never() -> None:
    statuses = {
        "http://c1:2379": _status(1, leader=1),
        "http://c2:2379": _status(2, leader=1, applied=90),
        "http://c3:2379": _status(3, leader=1, applied=99),
        "http://c4:2379": _status(4, leader=1),
    }
    assert [c.name for c in candidates(MEMBERS, statuses)] == ["m3", "m2", "m1"]


def test_a_member_down_without_a_leader_or_with_an_alarm_is_skipped() -> None:
    statuses = {
        "http://c1:2379": _status(1, leader=1),
        "http://c2:2379": None,
        "http://c3:2379": _status(3, leader=0),
    }
    assert [c.name for c in candidates(MEMBERS, statuses)] == ["m1"]
    statuses["http://c1:2379"] = _status(1, leader=1, errors=("NOSPACE",))
    assert candidates(MEMBERS, statuses) == []
