"""Rollout rules: outdated pods, emptyDir members, evictions and growing volumes."""

from __future__ import annotations

from etcd_operator.planner import (
    AddLearner,
    Degraded,
    ExpandVolume,
    InSync,
    MoveLeader,
    Observed,
    Reason,
    RemoveMember,
    UpgradeMember,
    Wait,
    decide,
    next_step,
)
from unit.support.observed import (
    VERSION,
    add_member,
    cluster,
    drop_member,
    member,
    mid,
    name,
    pod,
    pvc,
    replace,
    set_health,
    spec,
    unhealthy,
    without_pod,
)


def _outdated(o: Observed, *ordinals: int) -> Observed:
    for i in ordinals:
        o = pod(o, i, outdated=True)
    return o


# --- spec changes reach existing members ----------------------------------------------------


def test_outdated_followers_restart_highest_ordinal_first_through_the_eviction_api() -> None:
    d = decide(_outdated(cluster(3), 0, 1, 2))
    assert d.step == UpgradeMember(name(2), mid(2), VERSION, VERSION, evict=True)
    assert d.reason is Reason.ROLLING_RESTART
    assert "apply the changed spec" in d.message


def test_outdated_leader_goes_last_after_moving_leadership() -> None:
    o = _outdated(cluster(3), 0)
    assert next_step(o) == MoveLeader(mid(0), mid(1), name(1))


def test_pods_built_from_the_current_spec_are_left_alone() -> None:
    assert isinstance(next_step(cluster(3)), InSync)


def test_spec_rollout_waits_for_every_member_to_be_healthy() -> None:
    o = unhealthy(_outdated(cluster(3), 1, 2), 1)
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)


def test_spec_rollout_waits_for_the_last_restarted_member_to_catch_up() -> None:
    o = set_health(_outdated(cluster(3), 1), 2, raft_index=1)
    assert next_step(o) == Wait(Reason.MEMBER_CATCHING_UP)


def test_version_change_goes_first_and_carries_the_spec_along() -> None:
    o = spec(_outdated(cluster(3), 1), version="3.5.18")
    d = decide(o)
    assert d.step == UpgradeMember(name(2), mid(2), VERSION, "3.5.18")
    assert d.reason is Reason.UPGRADE


def test_outdated_pods_never_restart_while_scaling() -> None:
    o = _outdated(spec(cluster(3), replicas=4), 2)
    assert isinstance(next_step(o), AddLearner)


def test_one_and_two_voter_restarts_are_deleted_directly_with_the_outage_noted() -> None:
    d = decide(_outdated(cluster(1), 0))
    assert d.step == UpgradeMember(name(0), mid(0), VERSION, VERSION, evict=False)
    assert "unavailable" in d.message
    d = decide(_outdated(cluster(2), 1))
    assert d.step == UpgradeMember(name(1), mid(1), VERSION, VERSION, evict=False)


def test_three_voter_upgrades_go_through_the_eviction_api() -> None:
    d = decide(spec(cluster(3), version="3.6.0"))
    assert isinstance(d.step, UpgradeMember) and d.step.evict


# --- emptyDir: a restart is a replacement --------------------------------------------------


def test_empty_dir_member_of_three_is_evicted_then_replaced_as_a_new_member() -> None:
    o = _outdated(spec(cluster(3), empty_dir=True), 2)
    d = decide(o)
    assert d.step == UpgradeMember(name(2), mid(2), VERSION, VERSION, evict=True)
    assert "comes back as a new member" in d.message
    # Its pod is gone and its data with it: never restored, removed while quorum allows.
    gone = without_pod(o, 2)
    gone = replace(gone, pvcs={})
    assert decide(gone).step == RemoveMember(mid(2), name(2))


def test_empty_dir_member_without_pod_is_never_restarted_as_itself() -> None:
    o = replace(without_pod(spec(cluster(3), empty_dir=True), 1), pvcs={})
    assert next_step(o) == RemoveMember(mid(1), name(1))


def test_two_empty_dir_members_remove_the_follower_first_while_both_answer() -> None:
    o = replace(spec(cluster(2), version="3.6.0", empty_dir=True), pvcs={})
    d = decide(o)
    assert d.step == RemoveMember(mid(1), name(1))
    assert d.reason is Reason.REPLACE_MEMBER
    assert "new learner" in d.message


def test_two_empty_dir_members_move_leadership_before_replacing_the_leader() -> None:
    o = replace(_outdated(spec(cluster(2), empty_dir=True), 0), pvcs={})
    assert next_step(o) == MoveLeader(mid(0), mid(1), name(1))


def test_empty_dir_replacement_adds_the_member_back_as_a_learner() -> None:
    o = replace(drop_member(without_pod(spec(cluster(2), empty_dir=True), 1), 1), pvcs={})
    assert next_step(o) == AddLearner(name(1), o.expected_peer_urls[name(1)])


def test_single_empty_dir_member_is_never_restarted() -> None:
    for o in (
        spec(cluster(1), version="3.6.0", empty_dir=True),
        _outdated(spec(cluster(1), empty_dir=True), 0),
    ):
        d = decide(replace(o, pvcs={}))
        assert d.step == Degraded(Reason.RESTART_WOULD_LOSE_DATA)
        assert "Scale to 3 members" in d.message and "delete every key" in d.message


def test_learner_that_cannot_start_at_a_new_version_stalls_the_rollout() -> None:
    o = spec(cluster(2), replicas=3, version="3.6.99", empty_dir=True)
    o = add_member(o, member(2, learner=True, started=False))
    o = pod(o, 2, version="3.6.99", ready=False, start_error="ImagePullBackOff")
    d = decide(o)
    assert d.step == Degraded(Reason.UPGRADE_STALLED)
    assert f"back to {VERSION}" in d.message
    d = decide(spec(o, version=VERSION))  # the user sets the version back
    assert d.step == UpgradeMember(name(2), mid(2), "3.6.99", VERSION, evict=False)


# --- volumes grow in place -----------------------------------------------------------------


def _small(o: Observed, *ordinals: int) -> Observed:
    for i in ordinals:
        o = pvc(o, i, undersized=True)
    return o


def test_undersized_claims_grow_one_at_a_time_when_the_class_allows_it() -> None:
    o = replace(_small(cluster(3), 1, 2), volume_expansion=True)
    d = decide(o)
    assert d.step == ExpandVolume(name(1), name(1))
    assert d.reason is Reason.EXPAND_VOLUME


def test_claims_grow_even_while_a_member_is_unhealthy() -> None:
    o = replace(unhealthy(_small(cluster(3), 1), 1), volume_expansion=True)
    assert next_step(o) == ExpandVolume(name(1), name(1))


def test_claims_that_cannot_grow_are_reported_once_nothing_else_is_to_do() -> None:
    # A single member cannot move to a new volume without losing its data.
    o = replace(_small(cluster(1), 0), volume_expansion=False)
    d = decide(o)
    assert d.step == Degraded(Reason.VOLUME_EXPANSION_UNSUPPORTED)
    assert "etcd-0" in d.message and "allowVolumeExpansion" in d.message
    assert "spec.replicas: 3" in d.message
    # It blocks nothing: an upgrade still goes on.
    assert isinstance(next_step(spec(o, version="3.5.18")), UpgradeMember)


def test_claims_of_removed_members_are_not_grown() -> None:
    o = replace(_small(cluster(3), 5), volume_expansion=True)
    assert isinstance(next_step(o), InSync)
