"""Downgrading one minor with etcd's downgrade API: enable once every member runs the higher
minor and etcd has settled, restart members only once etcd lowered their storage version,
followers first and the leader last, cancel when spec.version goes back up, refuse what etcd
cannot do. Every decision is a function of what etcd and the pods say, so a restarted
operator carries on from wherever the previous one stopped."""

from __future__ import annotations

from etcd_operator.planner import (
    CancelDowngrade,
    CreatePod,
    Degraded,
    EnableDowngrade,
    MoveLeader,
    Observed,
    Reason,
    UpgradeMember,
    Wait,
    decide,
    next_step,
)
from unit.support.observed import (
    cluster,
    mid,
    name,
    pod,
    replace,
    set_health,
    spec,
    unhealthy,
    without_pod,
)

NEW, OLD = "3.6.16", "3.5.35"


def _at(o: Observed, i: int, version: str, **health: object) -> Observed:
    """Member i's pod runs `version`; etcd 3.6 members report a storage version (and the
    downgrade they know of), 3.5 members neither."""
    reports: dict[str, object] = {"storage_version": None, "downgrade_target": None}
    if version.startswith("3.6."):
        reports["storage_version"] = "3.6.0"
    reports.update(health)
    return set_health(pod(o, i, version=version), i, version=version, **reports)


def _upgraded(n: int = 3, **health: object) -> Observed:
    """Every member runs 3.6 (the cluster version moved), spec.version asks for 3.5."""
    o = spec(cluster(n), version=OLD)
    for i in range(n):
        o = _at(o, i, NEW, **health)
    recorded = health.get("downgrade_target")  # status records what etcd reports
    return replace(o, status_version=NEW, status_downgrade=recorded)


ENABLED = {"storage_version": "3.5.0", "downgrade_target": "3.5.0"}


def test_every_member_at_the_higher_minor_enables_etcds_downgrade() -> None:
    d = decide(_upgraded())
    assert d.step == EnableDowngrade(OLD)
    assert d.reason is Reason.ENABLE_DOWNGRADE
    assert "downgrade validate, then enable" in d.message


def test_nothing_is_enabled_before_etcd_settled_its_versions_after_an_upgrade() -> None:
    o = _at(_upgraded(), 1, NEW, storage_version="3.5.0")  # etcd still moving up
    d = decide(o)
    assert d.step == Wait(Reason.DOWNGRADE_PENDING)
    assert "etcd-1" in d.message


def test_members_wait_until_etcd_lowered_every_storage_version() -> None:
    o = _at(_upgraded(**ENABLED), 0, NEW, storage_version="3.6.0", downgrade_target="3.5.0")
    d = decide(o)
    assert d.step == Wait(Reason.DOWNGRADE_PENDING)
    assert "etcd-0" in d.message and "3.5" in d.message


def test_once_enabled_and_lowered_followers_restart_first_with_the_older_binary() -> None:
    d = decide(_upgraded(**ENABLED))
    assert d.step == UpgradeMember(name(2), mid(2), NEW, OLD)
    assert d.reason is Reason.DOWNGRADE


def test_a_restarted_operator_never_enables_twice_and_carries_on_from_the_pods() -> None:
    # Killed after enable: etcd's own record says enabled, so the next round restarts.
    assert not isinstance(next_step(_upgraded(**ENABLED)), EnableDowngrade)
    # Killed after etcd-2 came back at 3.5: the next follower goes, never etcd-2 again.
    o = _at(_upgraded(**ENABLED), 2, OLD)
    assert next_step(o) == UpgradeMember(name(1), mid(1), NEW, OLD)


def test_the_leader_goes_last_after_leadership_moved_to_a_downgraded_member() -> None:
    o = _at(_at(_upgraded(**ENABLED), 2, OLD), 1, OLD)
    assert next_step(o) == MoveLeader(mid(0), mid(1), name(1))


def test_spec_version_back_up_cancels_through_a_member_that_knows_the_downgrade() -> None:
    o = spec(_at(_upgraded(**ENABLED), 2, OLD), version=NEW)
    d = decide(o)
    assert d.step == CancelDowngrade(mid(0), name(0))
    assert d.reason is Reason.CANCEL_DOWNGRADE
    # Cancelled: etcd-2 rolls forward as in any upgrade.
    o = _at(_at(_at(o, 0, NEW), 1, NEW), 2, OLD)
    assert next_step(o) == UpgradeMember(name(2), mid(2), OLD, NEW)


def test_nothing_happens_in_a_cluster_that_is_not_calm() -> None:
    assert next_step(unhealthy(_upgraded(), 1)) == Wait(Reason.MEMBER_UNHEALTHY)
    assert next_step(unhealthy(_upgraded(**ENABLED), 1)) == Wait(Reason.MEMBER_UNHEALTHY)


def test_etcd_3_5_has_no_downgrade_api_so_3_5_to_3_4_is_refused() -> None:
    o = spec(cluster(3), version="3.4.20")  # every member runs 3.5.17
    d = decide(o)
    assert d.step == Degraded(Reason.UPGRADE_BLOCKED)
    assert "no downgrade API" in d.message


def test_a_single_member_on_an_emptydir_is_refused_before_anything_is_enabled() -> None:
    o = spec(_upgraded(1), empty_dir=True)
    assert next_step(o) == Degraded(Reason.RESTART_WOULD_LOSE_DATA)


def test_a_member_at_another_minor_leaves_the_version_to_the_upgrade_rules() -> None:
    o = _at(_upgraded(), 2, "3.7.0")
    d = decide(o)
    assert d.step == Degraded(Reason.UPGRADE_BLOCKED)


def test_an_unfinished_upgrade_is_still_rolled_back_without_the_api() -> None:
    o = _at(_upgraded(), 0, OLD)  # etcd-0 never left 3.5: the cluster version never moved
    d = decide(o)
    assert isinstance(d.step, UpgradeMember) and d.reason is Reason.UPGRADE


def test_a_member_that_cannot_run_the_target_is_rolled_forward_only_after_a_cancel() -> None:
    # etcd-2 was restarted at 3.5 and keeps crashing; the user sets spec.version back to 3.6.
    # While the downgrade is enabled etcd would refuse a 3.6 member, so cancel comes first.
    o = _at(_upgraded(**ENABLED), 2, OLD)
    o = pod(unhealthy(o, 2), 2, ready=False, crash_looping=True)
    o = spec(o, version=NEW)
    assert next_step(o) == CancelDowngrade(mid(0), name(0))
    cancelled = _at(_at(o, 0, NEW), 1, NEW)
    assert isinstance(next_step(cancelled), UpgradeMember)


def test_the_first_restart_waits_until_status_records_etcds_target() -> None:
    o = replace(_upgraded(**ENABLED), status_downgrade=None)
    d = decide(o)
    assert d.step == Wait(Reason.DOWNGRADE_PENDING) and "status" in d.message


def test_a_member_recreated_mid_downgrade_runs_the_target() -> None:
    # etcd-2's pod is gone (evicted for its restart): the others report the downgrade.
    o = without_pod(unhealthy(_upgraded(**ENABLED), 2), 2)
    step = next_step(o)
    assert isinstance(step, CreatePod) and step.member == name(2) and step.version == OLD
    # One member, its pod gone and nobody answering: status' record says where it goes.
    single = without_pod(replace(_upgraded(1, **ENABLED), members=None, member_health={}), 0)
    step = next_step(single)
    assert isinstance(step, CreatePod) and step.version == OLD
