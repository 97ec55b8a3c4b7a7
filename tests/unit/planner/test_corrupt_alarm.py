"""etcd's CORRUPT alarm: the member it names is replaced from a healthy majority, the alarm is
disarmed only once that member has left the member list, and anything else stays Degraded."""

from __future__ import annotations

import dataclasses

import pytest

from etcd_operator.planner import (
    AddLearner,
    Compact,
    Degraded,
    DeletePod,
    DisarmAlarm,
    KvHash,
    MoveLeader,
    Observed,
    Reason,
    RemoveMember,
    RetireVolume,
    SpaceState,
    Wait,
    decide,
    next_step,
)
from unit.support.observed import (
    add_member,
    claim,
    cluster,
    drop_member,
    member,
    mid,
    name,
    pod,
    replace,
    unhealthy,
    without_pod,
    without_pvc,
)


def alarmed(o: Observed, *ordinals: int, nospace: tuple[int, ...] = ()) -> Observed:
    """etcd's alarm list raises CORRUPT for `ordinals` (and NOSPACE for `nospace`); every pod
    is unready, as /readyz fails on every member while CORRUPT is active."""
    alarms = tuple((mid(i), "CORRUPT") for i in ordinals)
    alarms += tuple((mid(i), "NOSPACE") for i in nospace)
    o = replace(o, space=SpaceState(alarms=alarms))
    for i in range(len(o.members or ())):
        o = pod(o, i, ready=False)
    return o


def removed(o: Observed, ordinal: int) -> Observed:
    """The member has left the member list, its pod is gone and its claim retired (as after
    its removal and the steps for a removed member)."""
    o = without_pvc(without_pod(drop_member(o, ordinal), ordinal), ordinal)
    old = claim(ordinal, retired=True)
    return replace(o, other_claims={**o.other_claims, old.claim: old})


def test_a_corrupt_follower_is_removed_to_be_replaced_though_every_pod_is_unready() -> None:
    d = decide(alarmed(cluster(3), 2))
    assert d.step == RemoveMember(mid(2), name(2))
    assert d.reason is Reason.REPLACE_ALARMED_MEMBER and name(2) in d.message


def test_a_corrupt_leader_hands_leadership_over_first() -> None:
    d = decide(alarmed(cluster(3, leader=1), 1))
    assert isinstance(d.step, MoveLeader) and d.step.from_id == mid(1)
    assert d.step.to_id in (mid(0), mid(2))


def test_a_corrupt_member_that_does_not_answer_is_removed_when_the_rest_keep_quorum() -> None:
    d = decide(unhealthy(alarmed(cluster(3), 2), 2))
    assert d.step == RemoveMember(mid(2), name(2))
    assert d.reason is Reason.REPLACE_ALARMED_MEMBER


def test_nothing_is_replaced_while_another_voter_is_unhealthy() -> None:
    d = decide(unhealthy(alarmed(cluster(3), 2), 0))
    assert d.step == Degraded(Reason.CORRUPT_ALARM)
    assert name(2) in d.message and name(0) in d.message


def test_the_only_voter_is_never_replaced() -> None:
    d = decide(alarmed(cluster(1), 0))
    assert d.step == Degraded(Reason.CORRUPT_ALARM)
    assert "only voting member" in d.message and "backup" in d.message


def test_two_voters_leave_nobody_to_tell_which_copy_is_right() -> None:
    d = decide(alarmed(cluster(2), 1))
    assert d.step == Degraded(Reason.CORRUPT_ALARM) and "no majority" in d.message


def test_several_alarmed_members_are_left_to_a_human() -> None:
    d = decide(alarmed(cluster(5), 1, 3))
    assert d.step == Degraded(Reason.CORRUPT_ALARM)
    assert name(1) in d.message and name(3) in d.message and "member remove" in d.message


def test_a_removed_members_alarm_is_disarmed_once_the_rest_are_healthy() -> None:
    d = decide(removed(alarmed(cluster(3), 2), 2))
    assert d.step == DisarmAlarm((mid(2),), "CORRUPT")
    assert d.reason is Reason.CORRUPT_DISARMED


def test_the_alarm_stays_while_a_remaining_voter_is_unhealthy() -> None:
    d = decide(unhealthy(removed(alarmed(cluster(5), 4), 4), 1))
    assert d.step == Degraded(Reason.CORRUPT_ALARM) and name(1) in d.message


def test_the_alarm_stays_while_the_remaining_voters_hashes_disagree() -> None:
    o = removed(alarmed(cluster(3), 2), 2)
    hashes = {mid(0): KvHash(100, 1, 0xA11), mid(1): KvHash(100, 1, 0xBAD)}
    d = decide(replace(o, kv_hashes=hashes))
    assert d.step == Degraded(Reason.CORRUPTION_SUSPECTED)
    agreeing = {mid(0): KvHash(100, 1, 0xA11), mid(1): KvHash(100, 1, 0xA11)}
    assert isinstance(next_step(replace(o, kv_hashes=agreeing)), DisarmAlarm)
    # Hashes at different compact revisions say nothing: the healthy voters decide.
    mixed = {mid(0): KvHash(100, 1, 0xA11), mid(1): KvHash(100, 2, 0xBAD)}
    assert isinstance(next_step(replace(o, kv_hashes=mixed)), DisarmAlarm)


def test_the_alarm_is_never_disarmed_while_its_member_is_a_member() -> None:
    # Whatever else is true: here etcd-2 is even unhealthy and could not be removed.
    o = unhealthy(unhealthy(alarmed(cluster(3), 2), 2), 1)
    assert not isinstance(next_step(o), DisarmAlarm | RemoveMember)


def test_the_replacement_resumes_after_a_kill_at_any_point() -> None:
    """Each round derives the next step from etcd's alarm list and member list alone."""
    o = alarmed(cluster(3), 2)
    assert next_step(o) == RemoveMember(mid(2), name(2))
    # Killed after MemberRemove: the stray pod goes, then the alarm is disarmed.
    gone = drop_member(o, 2)
    assert next_step(gone) == DeletePod(name(2))
    assert isinstance(next_step(without_pod(gone, 2)), RetireVolume)
    after = removed(o, 2)
    assert next_step(after) == DisarmAlarm((mid(2),), "CORRUPT")
    # Killed after the disarm: the alarm list is empty, the fresh member joins as a learner.
    disarmed = replace(after, space=SpaceState())
    for i in (0, 1):
        disarmed = pod(disarmed, i, ready=True)
    step = next_step(disarmed)
    assert isinstance(step, AddLearner) and step.member == name(2)


def test_a_fresh_member_of_the_same_name_is_not_the_alarmed_one() -> None:
    # The removal was done and the fresh learner already added under the old name: the alarm
    # names the old ID only, so it is disarmed once the learner rules are done.
    o = removed(alarmed(cluster(3), 2), 2)
    fresh = dataclasses.replace(member(2, learner=True, started=False), id=0x900)
    o = add_member(o, fresh)
    assert not isinstance(next_step(o), RemoveMember)


def test_corrupt_comes_before_nospace_recovery() -> None:
    o = alarmed(cluster(3), 2, nospace=(0,))
    assert next_step(o) == RemoveMember(mid(2), name(2))
    d = decide(removed(o, 2))
    assert d.step == DisarmAlarm((mid(2),), "CORRUPT")
    # Then NOSPACE is recovered from as before.
    nospace = replace(removed(o, 2), space=SpaceState(alarms=((mid(0), "NOSPACE"),)))
    for i in (0, 1):
        nospace = pod(nospace, i, ready=True)
    assert next_step(nospace) == Compact()


@pytest.mark.parametrize("n", [3, 5])
def test_a_replacement_for_corrupt_never_costs_quorum(n: int) -> None:
    o = alarmed(cluster(n), n - 1)
    for down in range(n - 1):
        step = next_step(unhealthy(o, down))
        assert not isinstance(step, RemoveMember), (down, step)
    assert isinstance(next_step(o), RemoveMember | Wait)
