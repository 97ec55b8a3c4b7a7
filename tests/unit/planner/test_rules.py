"""One example per planner rule: the behaviour each rule exists for."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from etcd_operator.planner import (
    CATCH_UP_MAX_LAG,
    AddLearner,
    Bootstrap,
    ClusterState,
    CreatePod,
    Degraded,
    DeletePod,
    DeletePVC,
    Done,
    EtcdMember,
    InSync,
    MarkBootstrapped,
    MemberHealth,
    MoveLeader,
    Paused,
    PodPhase,
    PodState,
    PromoteLearner,
    PvcRetention,
    Reason,
    RecordVolume,
    RemoveMember,
    RetireVolume,
    UpgradeMember,
    Wait,
    decide,
    next_step,
)
from unit.support.observed import (
    INDEX,
    URLS,
    VERSION,
    add_member,
    claim,
    cluster,
    drop_member,
    fresh,
    health,
    member,
    mid,
    name,
    pod,
    pvc,
    replace,
    set_health,
    spec,
    unhealthy,
    url,
    without,
    without_pod,
    without_pvc,
)

# --- steady states -------------------------------------------------------------------------


def test_healthy_cluster_at_desired_size_is_in_sync() -> None:
    assert next_step(cluster(3)) == InSync()


def test_paused_cluster_gets_no_action_even_when_broken() -> None:
    assert next_step(spec(without_pod(cluster(3), 1), paused=True)) == Paused()


def test_deleting_cluster_is_left_to_the_finalizer() -> None:
    assert next_step(spec(cluster(3, replicas=5), deleting=True, paused=True)) == Done()


@pytest.mark.parametrize("replicas", [0, 10, -1])
def test_replicas_out_of_range_are_refused(replicas: int) -> None:
    assert next_step(spec(cluster(3), replicas=replicas)) == Degraded(Reason.INVALID_SPEC)


def test_missing_peer_urls_are_an_invalid_observation() -> None:
    urls = {k: v for k, v in URLS.items() if k != name(8)}
    assert next_step(replace(cluster(3), expected_peer_urls=urls)) == Degraded(
        Reason.INVALID_OBSERVATION
    )


# --- bootstrap -----------------------------------------------------------------------------


def test_new_cluster_bootstraps_all_members_together_with_a_static_initial_cluster() -> None:
    step = next_step(fresh(3))
    assert isinstance(step, Bootstrap)
    assert step.members == (name(0), name(1), name(2))
    assert step.initial_cluster.state is ClusterState.NEW
    assert (
        step.initial_cluster.flag() == f"{name(0)}={url(0)},{name(1)}={url(1)},{name(2)}={url(2)}"
    )
    assert step.initial_cluster.token == "etcd-uid-1"
    assert step.version == VERSION


def test_interrupted_bootstrap_creates_the_missing_initial_pod_with_state_new() -> None:
    boot = (name(0), name(1), name(2))
    o = pod(pod(fresh(5), 0, bootstrap_members=boot, ready=False), 2, bootstrap_members=boot)
    step = next_step(o)
    assert isinstance(step, CreatePod)
    assert step.member == name(1)
    assert step.initial_cluster.state is ClusterState.NEW
    # the initial cluster is the one the existing pods started with, not the new replicas
    assert [n for n, _ in step.initial_cluster.peers] == list(boot)


def test_bootstrap_waits_while_all_initial_pods_exist_but_have_not_formed() -> None:
    boot = (name(0),)
    assert next_step(pod(fresh(1), 0, bootstrap_members=boot, ready=False)) == Wait(
        Reason.BOOTSTRAPPING
    )


def test_bootstrap_pods_that_disagree_on_the_initial_cluster_stop_the_planner() -> None:
    o = pod(pod(fresh(3), 0, bootstrap_members=(name(0),)), 1, bootstrap_members=(name(1),))
    assert next_step(o) == Degraded(Reason.BOOTSTRAP_INCONSISTENT)


def test_bootstrap_refuses_volumes_with_another_clusters_data() -> None:
    o = pod(fresh(3), 0, bootstrap_members=(name(0), name(1), name(2)), data_lost=True)
    assert next_step(o) == Degraded(Reason.STALE_VOLUME)


def test_answering_members_have_their_logs_recorded_before_anything_else() -> None:
    fresh_claims = {name(i): claim(i, recorded=False) for i in range(3)}
    o = replace(cluster(3), bootstrapped=False, pvcs=fresh_claims)
    assert next_step(o) == RecordVolume(name(0), name(0), mid(0))


def test_one_recorded_log_means_the_cluster_formed_even_without_status() -> None:
    claims = {name(i): claim(i, recorded=i == 2) for i in range(3)}
    o = replace(cluster(3), bootstrapped=False, pvcs=claims)
    assert next_step(o) == RecordVolume(name(0), name(0), mid(0))
    nothing_answers = replace(o, members=None, member_health={}, leader_id=None, pods={})
    step = next_step(nothing_answers)
    assert isinstance(step, CreatePod)
    assert step.initial_cluster.state is ClusterState.EXISTING, "never bootstrapped again"


def test_answering_members_without_claims_mark_the_cluster_bootstrapped() -> None:
    # emptyDir members have no claim to record on: status alone says the cluster formed.
    assert next_step(replace(cluster(3), bootstrapped=False, pvcs={})) == MarkBootstrapped()


def test_bootstrapped_cluster_with_nothing_left_is_never_bootstrapped_again() -> None:
    o = replace(cluster(3), members=None, pods={}, pvcs={}, member_health={}, leader_id=None)
    assert next_step(o) == Degraded(Reason.CLUSTER_LOST)


# --- no member answers ---------------------------------------------------------------------


def test_all_pods_deleted_restarts_members_on_their_volumes() -> None:
    o = replace(cluster(3), members=None, pods={}, member_health={}, leader_id=None)
    step = next_step(o)
    assert isinstance(step, CreatePod)
    assert step.member == name(0)
    assert step.initial_cluster.state is ClusterState.EXISTING


def test_no_answer_with_all_pods_present_is_quorum_lost_and_nothing_is_touched() -> None:
    o = replace(cluster(3), members=None, member_health={}, leader_id=None)
    assert next_step(o) == Degraded(Reason.QUORUM_LOST)


def test_no_answer_restores_pods_with_the_running_version_when_upgrade_is_refused() -> None:
    o = spec(replace(cluster(3), members=None, member_health={}, leader_id=None), version="3.7.0")
    step = next_step(without_pod(o, 2))
    assert isinstance(step, CreatePod)
    assert step.version == VERSION


# --- quorum lost while members are known --------------------------------------------------


def test_quorum_lost_restarts_a_voter_pod_on_its_intact_volume() -> None:
    o = without_pod(unhealthy(unhealthy(cluster(3), 1), 2), 2)
    o = drop_member(o, 1)  # not relevant: still 2 voters, 1 healthy -> below quorum of 2
    o = add_member(o, member(1))
    step = next_step(o)
    assert isinstance(step, CreatePod)
    assert (step.member, step.claim, step.member_id) == (name(2), name(2), mid(2))
    assert step.version == VERSION


def test_quorum_lost_never_removes_a_member_whose_data_is_lost() -> None:
    o = pod(unhealthy(unhealthy(cluster(3), 1), 2), 2, data_lost=True)
    assert next_step(o) == Degraded(Reason.QUORUM_LOST)


def test_quorum_lost_does_not_recreate_a_voter_whose_volume_is_gone() -> None:
    o = without_pvc(without_pod(unhealthy(unhealthy(cluster(3), 1), 2), 2), 2)
    assert next_step(o) == Degraded(Reason.QUORUM_LOST)


# --- heal ----------------------------------------------------------------------------------


def test_deleted_pod_of_a_member_is_recreated_to_rejoin_as_itself() -> None:
    step = next_step(without_pod(unhealthy(cluster(3), 1), 1))
    assert isinstance(step, CreatePod)
    assert step.member == name(1)
    assert step.initial_cluster.state is ClusterState.EXISTING
    assert dict(step.initial_cluster.peers) == {name(i): url(i) for i in range(3)}


def test_member_with_lost_data_is_removed_when_quorum_allows() -> None:
    o = pod(unhealthy(cluster(3), 1), 1, data_lost=True)
    assert next_step(o) == RemoveMember(mid(1), name(1))


def test_member_whose_pod_and_volume_are_gone_is_removed_to_be_replaced() -> None:
    o = without_pvc(without_pod(unhealthy(cluster(5), 4), 4), 4)
    assert decide(o).reason is Reason.REPLACE_LOST_MEMBER
    assert next_step(o) == RemoveMember(mid(4), name(4))


def test_lost_member_is_not_removed_when_another_voter_is_down_too_and_quorum_would_break() -> None:
    # 4 voters, 3 healthy: removing the lost one leaves 3 voters with 2 healthy (quorum 2: ok);
    # with a second one down: 4 voters, 2 healthy -> quorum lost already.
    o = pod(unhealthy(cluster(4), 3), 3, data_lost=True)
    assert next_step(o) == RemoveMember(mid(3), name(3))
    assert next_step(unhealthy(o, 2)) == Degraded(Reason.QUORUM_LOST)


def test_two_voters_cannot_replace_a_lost_one() -> None:
    o = pod(unhealthy(cluster(2), 1), 1, data_lost=True)
    assert next_step(o) == Degraded(Reason.QUORUM_LOST)


def test_stray_pod_left_after_member_removal_is_deleted() -> None:
    o = drop_member(cluster(3), 2)
    o = spec(o, replicas=2)
    assert next_step(o) == DeletePod(name(2))


def test_terminating_member_pod_is_waited_for() -> None:
    assert next_step(pod(cluster(3), 1, deleting=True)) == Wait(Reason.POD_TERMINATING)


def test_foreign_unstarted_learner_is_removed() -> None:
    stranger = EtcdMember(0x999, "", ("https://elsewhere:2380",), (), True)
    assert next_step(add_member(cluster(3), stranger)) == RemoveMember(0x999, "999")


def test_foreign_voter_is_reported_not_removed() -> None:
    stranger = EtcdMember(0x999, "other", ("https://elsewhere:2380",), (), False)
    o = add_member(cluster(3), stranger, health())
    assert next_step(o) == Degraded(Reason.FOREIGN_MEMBER)


def test_duplicate_unstarted_learner_for_a_name_is_removed() -> None:
    dup = dataclasses.replace(member(1, learner=True, started=False), id=0x777)
    assert next_step(add_member(cluster(3), dup)) == RemoveMember(0x777, name(1))


def test_two_voters_for_one_name_stop_the_planner() -> None:
    dup = dataclasses.replace(member(1), id=0x777)
    assert next_step(add_member(cluster(3), dup, health())) == Degraded(Reason.DUPLICATE_MEMBER)


def test_unhealthy_member_blocks_scaling() -> None:
    o = unhealthy(cluster(3, replicas=5), 1)
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)


def test_crash_looping_member_is_reported() -> None:
    o = pod(unhealthy(cluster(3), 1), 1, crash_looping=True)
    assert next_step(o) == Degraded(Reason.MEMBER_CRASH_LOOPING)


def test_pending_pod_with_unbound_volume_waits_for_the_volume() -> None:
    o = pvc(pod(unhealthy(cluster(3), 1), 1, phase=PodPhase.PENDING), 1, bound=False)
    assert next_step(o) == Wait(Reason.VOLUME_PENDING)


def test_an_alarm_members_report_blocks_scaling() -> None:
    o = set_health(cluster(3, replicas=5), 0, alarms=("NOSPACE",))
    assert next_step(o) == Degraded(Reason.ALARM_ACTIVE)


# --- scale out -----------------------------------------------------------------------------


def test_scale_out_adds_the_lowest_free_ordinal_as_a_learner() -> None:
    o = spec(drop_member(without_pod(without_pvc(cluster(4), 1), 1), 1), replicas=5)
    assert next_step(o) == AddLearner(name(1), url(1))


def test_a_removed_members_claim_is_retired_under_retain_and_never_reused() -> None:
    o = without_pod(drop_member(cluster(4, replicas=4), 3), 3)
    assert next_step(o) == RetireVolume(name(3), name(3), mid(3))
    retired = replace(
        o, pvcs=without(o.pvcs, name(3)), other_claims={name(3): claim(3, retired=True)}
    )
    assert next_step(retired) == AddLearner(name(3), url(3))
    learner = add_member(retired, member(3, learner=True, started=False))
    step = next_step(learner)
    assert isinstance(step, CreatePod)
    assert (step.claim, step.member_id) == (f"{name(3)}-1", None), "a fresh claim of its own"


def test_a_removed_members_claim_is_deleted_under_delete() -> None:
    o = without_pod(drop_member(cluster(4, replicas=4, pvc_when_scaled=PvcRetention.DELETE), 3), 3)
    assert next_step(o) == DeletePVC(name(3), name(3))
    assert next_step(pvc(o, 3, deleting=True)) == Wait(Reason.VOLUME_TERMINATING)


def test_a_claim_from_before_records_is_kept_not_reused_for_a_new_member() -> None:
    o = without_pod(drop_member(cluster(4, replicas=4, pvc_when_scaled=PvcRetention.DELETE), 3), 3)
    legacy = pvc(o, 3, cluster_uid=None, member_id=None)
    step = next_step(legacy)
    assert isinstance(step, RetireVolume), "not ours by record: never deleted"


def test_another_clusters_claims_block_bootstrap_and_are_never_touched() -> None:
    old = claim(0, cluster_uid="uid-old")
    o = replace(fresh(3), other_claims={name(0): old})
    decision = decide(o)
    assert decision.step == Degraded(Reason.FOREIGN_VOLUME)
    assert "uid-old" in decision.message and name(0) in decision.message


def test_added_learner_without_pod_gets_its_pod_not_another_member() -> None:
    o = add_member(spec(cluster(3), replicas=4), member(3, learner=True, started=False))
    step = next_step(o)
    assert isinstance(step, CreatePod)
    assert step.member == name(3)
    assert step.initial_cluster.state is ClusterState.EXISTING
    assert (name(3), url(3)) in step.initial_cluster.peers


def test_learner_that_caught_up_is_promoted() -> None:
    o = add_member(spec(cluster(3), replicas=4), member(3, learner=True), health(index=INDEX))
    o = pod(pvc(o, 3, member_id=mid(3)), 3)
    assert next_step(o) == PromoteLearner(mid(3), name(3))


def test_a_started_learner_has_its_log_recorded_before_it_may_vote() -> None:
    o = add_member(spec(cluster(3), replicas=4), member(3, learner=True), health(index=INDEX))
    o = pod(pvc(o, 3), 3)
    assert next_step(o) == RecordVolume(name(3), name(3), mid(3))


def test_learner_behind_the_leader_waits() -> None:
    lagging = health(index=INDEX - CATCH_UP_MAX_LAG - 1)
    o = add_member(spec(cluster(3), replicas=4), member(3, learner=True), lagging)
    o = pod(pvc(o, 3, member_id=mid(3)), 3)
    assert next_step(o) == Wait(Reason.LEARNER_CATCHING_UP)


def test_learner_no_longer_wanted_after_replicas_shrank_is_removed() -> None:
    o = add_member(cluster(3), member(3, learner=True), health())
    o = pod(pvc(o, 3, member_id=mid(3)), 3)
    assert next_step(o) == RemoveMember(mid(3), name(3))


def test_only_one_learner_at_a_time() -> None:
    o = add_member(spec(cluster(3), replicas=5), member(3, learner=True), health(index=0))
    o = pod(pvc(o, 3), 3)
    assert not isinstance(next_step(o), AddLearner)


# --- scale in ------------------------------------------------------------------------------


def test_scale_in_removes_the_highest_ordinal_first() -> None:
    assert next_step(cluster(5, replicas=3)) == RemoveMember(mid(4), name(4))


def test_scale_in_moves_leadership_away_from_the_member_to_remove() -> None:
    assert next_step(cluster(3, replicas=2, leader=2)) == MoveLeader(mid(2), mid(0), name(0))


def test_scale_in_never_below_one_member() -> None:
    assert next_step(spec(cluster(1), replicas=0)) == Degraded(Reason.INVALID_SPEC)


def test_scaled_volume_is_deleted_when_policy_is_delete() -> None:
    o = without_pod(drop_member(cluster(3, replicas=2), 2), 2)
    assert next_step(o) == RetireVolume(name(2), name(2), mid(2))
    delete = spec(o, pvc_when_scaled=PvcRetention.DELETE)
    assert next_step(delete) == DeletePVC(name(2), name(2))
    retired = replace(
        o, pvcs=without(o.pvcs, name(2)), other_claims={name(2): claim(2, retired=True)}
    )
    assert next_step(retired) == InSync(), "a retired claim is kept and left alone"


def test_all_pods_gone_restarts_each_member_expecting_its_recorded_log() -> None:
    o = replace(cluster(3), members=None, pods={}, member_health={}, leader_id=None)
    step = next_step(o)
    assert isinstance(step, CreatePod)
    assert (step.member, step.member_id) == (name(0), mid(0))


def test_a_retired_claim_is_never_restarted_when_nothing_answers() -> None:
    o = replace(cluster(2, replicas=2), members=None, pods={}, member_health={}, leader_id=None)
    o = replace(o, other_claims={name(2): claim(2, retired=True)})
    steps = {next_step(without_pvc(o, i)).member for i in range(2)}  # type: ignore[union-attr]
    assert name(2) not in steps


def test_a_stale_data_lost_flag_does_not_remove_a_member_that_answers() -> None:
    assert next_step(pod(cluster(3), 1, data_lost=True)) == InSync()
    lost = pod(unhealthy(cluster(3), 1), 1, data_lost=True)
    assert next_step(lost) == RemoveMember(mid(1), name(1))


def test_scale_in_removes_a_crash_looping_member_when_the_rest_keep_quorum() -> None:
    o = pod(unhealthy(cluster(5, replicas=3), 1), 1, crash_looping=True)
    decision = decide(o)
    assert decision.step == RemoveMember(mid(1), name(1))
    assert decision.reason is Reason.SCALE_IN
    at_size = pod(unhealthy(cluster(3), 1), 1, crash_looping=True)
    assert next_step(at_size) == Degraded(Reason.MEMBER_CRASH_LOOPING)


# --- upgrade -------------------------------------------------------------------------------


def test_upgrade_restarts_followers_first_highest_ordinal_first() -> None:
    assert next_step(spec(cluster(3), version="3.6.0")) == UpgradeMember(
        name(2), mid(2), VERSION, "3.6.0"
    )


def test_upgrade_moves_leadership_to_an_upgraded_member_before_the_leader() -> None:
    o = pod(pod(spec(cluster(3), version="3.5.18"), 1, version="3.5.18"), 2, version="3.5.18")
    assert next_step(o) == MoveLeader(mid(0), mid(1), name(1))


@pytest.mark.parametrize("target", ["3.7.0", "3.4.20", "4.0.0", "latest"])
def test_upgrade_that_skips_or_downgrades_a_minor_is_blocked(target: str) -> None:
    assert next_step(spec(cluster(3), version=target)) == Degraded(Reason.UPGRADE_BLOCKED)


def test_patch_downgrade_is_allowed() -> None:
    assert isinstance(next_step(spec(cluster(3), version="3.5.1")), UpgradeMember)


def test_single_member_cluster_is_upgraded_in_place_with_downtime_noted() -> None:
    d = decide(spec(cluster(1), version="3.6.0"))
    assert d.step == UpgradeMember(name(0), mid(0), VERSION, "3.6.0", evict=False)
    assert "unavailable while etcd-0 restarts" in d.message


def test_two_member_cluster_upgrades_the_follower_then_moves_leadership() -> None:
    o = spec(cluster(2), version="3.6.0")
    d = decide(o)
    assert d.step == UpgradeMember(name(1), mid(1), VERSION, "3.6.0", evict=False)
    assert "unavailable" in d.message
    o = set_health(pod(o, 1, version="3.6.0"), 1, version="3.6.0")
    assert next_step(o) == MoveLeader(mid(0), mid(1), name(1))
    o = set_health(set_health(replace(o, leader_id=mid(1)), 0, is_leader=False), 1, is_leader=True)
    assert next_step(o) == UpgradeMember(name(0), mid(0), VERSION, "3.6.0", evict=False)


def test_upgrade_of_three_members_never_takes_quorum() -> None:
    o = pod(spec(cluster(3), version="3.6.0"), 2, version="3.6.0")
    d = decide(o)
    assert d.step == UpgradeMember(name(1), mid(1), VERSION, "3.6.0")
    assert "unavailable" not in d.message


def test_upgrade_waits_for_a_pending_learner() -> None:
    o = add_member(
        spec(cluster(3, replicas=4), version="3.6.0"),
        member(3, learner=True),
        health(index=INDEX - CATCH_UP_MAX_LAG - 1),
    )
    assert next_step(pod(o, 3, ready=False)) == Wait(Reason.LEARNER_CATCHING_UP)


def test_upgrade_waits_for_every_member_to_be_healthy() -> None:
    o = unhealthy(spec(cluster(3), version="3.6.0"), 1)
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)


def test_upgrade_waits_for_the_last_restarted_member_to_catch_up() -> None:
    o = pod(spec(cluster(3), version="3.6.0"), 2, version="3.6.0")
    o = set_health(o, 2, raft_index=INDEX - CATCH_UP_MAX_LAG - 1)
    d = decide(o)
    assert d.step == Wait(Reason.MEMBER_CATCHING_UP)
    assert name(2) in d.message


def _stuck(version: str = "3.6.99", **changes: object) -> object:
    """etcd-2 replaced at `version`, whose image cannot be pulled: its pod stays Pending."""
    o = spec(cluster(3), version=version)
    o = pod(o, 2, version=version, ready=False, phase=PodPhase.PENDING, **changes)
    hs = dict(o.member_health)
    hs[mid(2)] = MemberHealth(reachable=False, healthy=False)
    return replace(o, member_health=hs)


def test_member_that_cannot_start_at_the_new_version_stops_the_rollout() -> None:
    o = _stuck(start_error="ImagePullBackOff")
    d = decide(o)  # type: ignore[arg-type]
    assert d.step == Degraded(Reason.UPGRADE_STALLED)
    for words in ("etcd-2", "3.6.99", "ImagePullBackOff", f"spec.version back to {VERSION}"):
        assert words in d.message


def test_crash_looping_member_at_the_new_version_stops_the_rollout() -> None:
    d = decide(_stuck(crash_looping=True))  # type: ignore[arg-type]
    assert d.step == Degraded(Reason.UPGRADE_STALLED)
    assert "CrashLoopBackOff" in d.message


def test_member_not_healthy_long_after_its_upgrade_stalls_the_rollout() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    o = replace(_stuck(created_at=t0), now=t0 + timedelta(minutes=1))  # type: ignore[arg-type]
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)
    o = replace(o, now=t0 + timedelta(minutes=4))
    d = decide(o)
    assert d.step == Degraded(Reason.UPGRADE_STALLED)
    assert "4 minutes" in d.message


def test_setting_the_version_back_rolls_the_broken_member_back() -> None:
    o = spec(_stuck(start_error="ErrImagePull"), version=VERSION)  # type: ignore[arg-type]
    d = decide(o)
    assert d.step == UpgradeMember(name(2), mid(2), "3.6.99", VERSION, evict=False)
    assert "ErrImagePull" in d.message


def test_fixing_the_version_forward_replaces_the_broken_member_first() -> None:
    o = spec(_stuck(start_error="ErrImagePull"), version="3.6.0")  # type: ignore[arg-type]
    assert next_step(o) == UpgradeMember(name(2), mid(2), "3.6.99", "3.6.0", evict=False)


def test_crash_loop_at_the_version_the_cluster_runs_is_not_treated_as_an_upgrade() -> None:
    o = pod(spec(cluster(3), version="3.6.0"), 2, crash_looping=True, ready=False)
    assert next_step(o) == Degraded(Reason.MEMBER_CRASH_LOOPING)


def test_minor_rollback_of_an_unfinished_upgrade_is_allowed() -> None:
    o = set_health(pod(cluster(3), 2, version="3.6.0"), 2, version="3.6.0")
    assert next_step(o) == UpgradeMember(name(2), mid(2), "3.6.0", VERSION)


def test_minor_downgrade_of_a_finished_upgrade_uses_etcds_downgrade_api() -> None:
    # Once the cluster version moved, etcd's downgrade API (planner/downgrade.py, tested in
    # test_downgrade.py) is the way back; without storage versions reported it waits.
    o = cluster(3)
    for i in range(3):
        o = set_health(pod(o, i, version="3.6.0"), i, version="3.6.0")
    d = decide(o)
    assert d.step == Wait(Reason.DOWNGRADE_PENDING)
    assert "storage version" in d.message and "3.6" in d.message


def test_skipping_a_minor_is_blocked_with_a_clear_message() -> None:
    d = decide(spec(cluster(3), version="3.7.0"))
    assert d.step == Degraded(Reason.UPGRADE_BLOCKED)
    assert "skip a minor version" in d.message and "3.6.x first" in d.message


def test_single_member_whose_new_image_cannot_start_is_rolled_back_without_quorum() -> None:
    o = _stuck(start_error="ImagePullBackOff")  # type: ignore[assignment]
    o = replace(
        without_pvc(without_pod(without_pvc(without_pod(o, 1), 1), 0), 0),  # type: ignore[arg-type]
        members=None,
        member_health={},
        spec=dataclasses.replace(o.spec, replicas=1),  # type: ignore[attr-defined]
    )
    assert next_step(o) == Degraded(Reason.QUORUM_LOST)  # still asking for the broken version
    assert next_step(spec(o, version=VERSION)) == UpgradeMember(
        name(2), None, "3.6.99", VERSION, evict=False
    )


def test_two_members_one_stuck_at_a_new_version_is_rolled_back_without_quorum() -> None:
    o = spec(_stuck(start_error="ErrImagePull"), version=VERSION)  # type: ignore[arg-type]
    o = drop_member(without_pvc(without_pod(o, 1), 1), 1)
    o = set_health(o, 0, healthy=False)  # alone, etcd-0 cannot serve a quorum read
    assert next_step(o) == UpgradeMember(name(2), mid(2), "3.6.99", VERSION, evict=False)


def test_new_learner_uses_the_running_version_when_the_upgrade_is_refused() -> None:
    o = add_member(
        spec(cluster(3), replicas=4, version="3.7.0"), member(3, learner=True, started=False)
    )
    step = next_step(o)
    assert isinstance(step, CreatePod)
    assert step.version == VERSION


def test_decision_reason_matches_wait_and_degraded_steps() -> None:
    for o in (unhealthy(cluster(3, replicas=5), 1), spec(cluster(3), version="3.7.0")):
        d = decide(o)
        assert isinstance(d.step, Wait | Degraded)
        assert d.step.reason is d.reason
        assert d.message


def test_member_health_missing_means_unhealthy() -> None:
    o = replace(cluster(3, replicas=4), member_health={mid(0): health(leader=True)})
    assert next_step(o) == Degraded(Reason.QUORUM_LOST)
    o2 = replace(o, member_health={**o.member_health, mid(1): MemberHealth(True, True)})
    assert next_step(o2) == Wait(Reason.MEMBER_UNHEALTHY)


def test_pod_not_ready_makes_member_unhealthy() -> None:
    o = pod(cluster(3, replicas=4), 2, ready=False)
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)
    assert PodState().ready


def test_a_caught_up_learner_is_promoted_although_its_pod_is_never_ready() -> None:
    # etcd's /readyz fails for learners by design, so readiness cannot gate promotion.
    from unit.support.observed import add_member, health, member

    o = add_member(cluster(3, replicas=4), member(3, learner=True), health())
    o = pod(o, 3, ready=False)
    assert isinstance(next_step(o), PromoteLearner)


def test_readiness_lag_after_a_promotion_is_a_wait_not_quorum_lost() -> None:
    o = pod(pod(cluster(3), 1, ready=False), 2, ready=False)
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)
