"""The corruption check's rules: a member diverged from a strict majority's HashKV is replaced
from the majority, never the other way round; without a majority nothing is replaced."""

from __future__ import annotations

from etcd_operator.planner import (
    Degraded,
    InSync,
    KvHash,
    MoveLeader,
    Reason,
    RemoveMember,
    decide,
    diverged_members,
    next_step,
)
from unit.support.observed import cluster, mid, name, replace, unhealthy

GOOD, BAD = 0xA11, 0xBAD


def _hashes(*values: int, revision: int = 100, compact: int = 1) -> dict[int, KvHash]:
    return {mid(i): KvHash(revision, compact, h) for i, h in enumerate(values)}


def test_the_minority_is_diverged_only_against_a_strict_majority() -> None:
    assert diverged_members(_hashes(GOOD, BAD, GOOD), 3) == (mid(1),)
    assert diverged_members(_hashes(GOOD, GOOD, GOOD), 3) == ()
    assert diverged_members(_hashes(GOOD, BAD), 2) is None  # one against one: no majority
    assert diverged_members(_hashes(1, 2, 3), 3) is None
    assert diverged_members(_hashes(GOOD, BAD, GOOD, BAD, GOOD), 5) == (mid(1), mid(3))
    # Two of five hashes agreeing is no majority of five voters.
    assert diverged_members(_hashes(GOOD, GOOD, BAD), 5) is None


def test_hashes_at_different_revisions_are_not_compared() -> None:
    mixed = {**_hashes(GOOD, GOOD), mid(2): KvHash(101, 1, BAD)}
    assert diverged_members(mixed, 3) is None
    compacted = {**_hashes(GOOD, GOOD), mid(2): KvHash(100, 2, BAD)}
    assert diverged_members(compacted, 3) is None


def test_a_diverged_follower_is_removed_to_be_replaced_from_the_majority() -> None:
    d = decide(replace(cluster(3), kv_hashes=_hashes(GOOD, GOOD, BAD)))
    assert d.step == RemoveMember(mid(2), name(2))
    assert d.reason is Reason.REPLACE_CORRUPT_MEMBER
    assert name(2) in d.message


def test_a_diverged_leader_hands_over_leadership_first() -> None:
    d = decide(replace(cluster(3, leader=0), kv_hashes=_hashes(BAD, GOOD, GOOD)))
    assert isinstance(d.step, MoveLeader) and d.step.from_id == mid(0)


def test_no_majority_is_reported_and_nothing_is_replaced() -> None:
    d = decide(replace(cluster(2), kv_hashes=_hashes(GOOD, BAD)))
    assert d.step == Degraded(Reason.CORRUPTION_SUSPECTED)
    assert name(0) in d.message and name(1) in d.message


def test_agreeing_members_change_nothing() -> None:
    assert isinstance(next_step(replace(cluster(3), kv_hashes=_hashes(GOOD, GOOD, GOOD))), InSync)


def test_a_diverged_member_is_not_removed_when_that_would_cost_quorum() -> None:
    # etcd-1 is down: removing diverged etcd-2 would leave one healthy voter of two.
    o = replace(unhealthy(cluster(3), 1), kv_hashes=_hashes(GOOD, GOOD, BAD))
    step = next_step(o)
    assert not isinstance(step, RemoveMember)


def test_hashes_at_different_compact_revisions_decide_nothing() -> None:
    mixed = {**_hashes(GOOD, GOOD), mid(2): KvHash(100, 2, BAD)}
    assert isinstance(next_step(replace(cluster(3), kv_hashes=mixed)), InSync)
