"""Replacing a chosen member on request, and moving members onto larger claims: the rules one
by one, then the whole replacement driven through the model world with the operator killed
after every call."""

from __future__ import annotations

import pytest

from etcd_operator.naming import member_name
from etcd_operator.planner import (
    AddLearner,
    Degraded,
    EtcdMember,
    InSync,
    MoveLeader,
    Observed,
    PvcRetention,
    Reason,
    RecordReplacement,
    RemoveMember,
    ReplacementRecord,
    Wait,
    decide,
    next_step,
)
from unit.support.observed import (
    add_member,
    cluster,
    health,
    member,
    mid,
    name,
    pvc,
    replace,
    spec,
    unhealthy,
)
from unit.support.world import World


def _requested(o: Observed, ordinal: int, *, recorded: int | None = None) -> Observed:
    record = (
        ReplacementRecord(name(ordinal), name(ordinal), recorded) if recorded is not None else None
    )
    return replace(o, replace_request=name(ordinal), replacement=record)


# --- on request ------------------------------------------------------------------------------


def test_a_request_is_recorded_with_the_member_id_before_anything_is_removed() -> None:
    d = decide(_requested(cluster(3), 1))
    assert d.step == RecordReplacement(name(1), name(1), mid(1))
    assert d.reason is Reason.REPLACE_REQUESTED


def test_the_recorded_member_is_removed_and_only_it() -> None:
    d = decide(_requested(cluster(3), 1, recorded=mid(1)))
    assert d.step == RemoveMember(mid(1), name(1))
    assert d.reason is Reason.REPLACE_CHOSEN_MEMBER


def test_the_leader_hands_over_leadership_before_it_is_replaced() -> None:
    d = decide(_requested(cluster(3, leader=1), 1, recorded=mid(1)))
    assert isinstance(d.step, MoveLeader) and d.step.from_id == mid(1)


def test_once_removed_a_fresh_member_takes_the_name_and_is_never_removed_again() -> None:
    # The member list no longer holds the recorded ID; the name comes back as a new learner.
    o = _requested(cluster(3), 1, recorded=mid(1))
    gone = replace(
        o,
        members=tuple(m for m in o.members or () if m.id != mid(1)),
        pods={n: p for n, p in o.pods.items() if n != name(1)},
        pvcs={n: p for n, p in o.pvcs.items() if n != name(1)},
    )
    assert isinstance(next_step(gone), AddLearner)
    # The fresh member under that name (another ID) is never taken for the recorded one.
    fresh = add_member(
        replace(gone, members=tuple(m for m in gone.members or ())),
        EtcdMember(0x999, name(1), member(1).peer_urls, member(1).client_urls),
        health(),
    )
    fresh = replace(fresh, pods=o.pods, pvcs={**o.pvcs, name(1): o.pvcs[name(1)]})
    fresh = pvc(fresh, 1, member_id=0x999)
    assert isinstance(next_step(fresh), InSync)


def test_no_request_is_started_while_a_member_is_unhealthy_or_a_learner_is_in_flight() -> None:
    assert isinstance(next_step(_requested(unhealthy(cluster(3), 2), 1)), Wait)
    learning = add_member(cluster(3, replicas=4), member(3, learner=True), health(index=10))
    step = next_step(_requested(learning, 1))
    assert not isinstance(step, RecordReplacement) and step != RemoveMember(mid(1), name(1))


def test_a_single_member_is_never_replaced_and_scaling_out_as_advised_goes_on() -> None:
    d = decide(_requested(cluster(1), 0))
    assert d.step == Degraded(Reason.REPLACE_REFUSED)
    assert "only voting member" in d.message and "spec.replicas: 3" in d.message
    assert isinstance(next_step(_requested(cluster(1, replicas=3), 0)), AddLearner)


def test_one_of_two_voters_is_replaced_while_both_answer() -> None:
    d = decide(_requested(cluster(2), 1, recorded=mid(1)))
    assert d.step == RemoveMember(mid(1), name(1))


def test_a_request_naming_no_voter_is_reported_and_blocks_nothing() -> None:
    o = replace(cluster(3), replace_request="etcd-7")
    d = decide(o)
    assert d.step == Degraded(Reason.REPLACE_REFUSED)
    assert "etcd-7" in d.message
    assert isinstance(next_step(spec(o, replicas=4)), AddLearner)


# --- storage growth where claims cannot expand ------------------------------------------------


def _small(o: Observed, *ordinals: int) -> Observed:
    for i in ordinals:
        o = pvc(o, i, undersized=True)
    return replace(o, volume_expansion=False)


def test_members_on_claims_that_cannot_grow_are_replaced_followers_first() -> None:
    d = decide(_small(cluster(3, leader=0), 0, 1, 2))
    assert d.step == RemoveMember(mid(1), name(1))
    assert d.reason is Reason.GROW_BY_REPLACEMENT
    d = decide(_small(cluster(3, leader=0), 0))
    assert isinstance(d.step, MoveLeader) and d.step.from_id == mid(0)


def test_growth_waits_for_every_voter_to_catch_up() -> None:
    o = _small(cluster(3), 1)
    lagging = replace(o, member_health={**o.member_health, mid(2): health(index=1)})
    assert next_step(lagging) == Wait(Reason.MEMBER_CATCHING_UP)


# --- the whole replacement, killed after every call ----------------------------------------


def _ids(w: World) -> dict[str, int]:
    return {m.slot: m.id for m in w.voters()}


@pytest.mark.parametrize("size", [2, 3, 5])
@pytest.mark.parametrize("crash_at", [None, 0, 1, 2])
def test_a_requested_replacement_swaps_exactly_that_member(size: int, crash_at: int | None) -> None:
    w = World(replicas=size, policy=PvcRetention.RETAIN)
    w.converge()
    before = _ids(w)
    chosen = member_name("demo", 1)
    w.replace_request = chosen
    w.history.clear()
    for _ in range(300):
        d = w.round(crash_after=crash_at)
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()
    after = _ids(w)
    assert after[chosen] != before[chosen]
    assert {n: i for n, i in after.items() if n != chosen} == {
        n: i for n, i in before.items() if n != chosen
    }
    removed = {s.member_id for s in w.history if isinstance(s, RemoveMember)}
    assert removed == {before[chosen]}
    # The old volume is kept by the retention policy and never used again.
    assert w.pods[chosen].claim == f"{chosen}-1"
    assert w.pvcs[chosen].retired
    # The request stays handled: more rounds replace nothing more.
    w.history.clear()
    w.converge()
    assert not any(isinstance(s, RemoveMember) for s in w.history)


@pytest.mark.parametrize("policy", list(PvcRetention))
@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_claims_that_cannot_grow_are_swapped_for_fresh_ones_one_member_at_a_time(
    crash_at: int | None, policy: PvcRetention
) -> None:
    w = World(replicas=3, policy=policy)
    w.converge()
    w.small_claims = set(w.pvcs)
    for _ in range(400):
        d = w.round(crash_after=crash_at)
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()
    assert not any(p.claim in w.small_claims for p in w.pods.values())
    if policy is PvcRetention.RETAIN:
        assert all(w.pvcs[c].retired for c in w.small_claims)
