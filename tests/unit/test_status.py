from datetime import UTC, datetime, timedelta

from etcd_operator.api import ClusterPhase, ConditionStatus, MemberStatus
from etcd_operator.planner import decide
from etcd_operator.planner.steps import Decision, Degraded, InSync, Reason, Wait
from etcd_operator.status import Round, next_status, phase_of
from unit.support.observed import cluster, fresh, name, unhealthy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _round(observed, decision, *, ready=3, error=None):  # type: ignore[no-untyped-def]
    members = [MemberStatus(name=name(i), version="3.5.17") for i in range(3)]
    return Round(observed, decision, members, ready, "abc", name(0), "http://x:2379", error)


def _cond(status, kind):  # type: ignore[no-untyped-def]
    return next(c for c in status.conditions if c.type == kind)


def test_healthy_cluster_in_sync_is_running_available_and_not_degraded() -> None:
    observed = cluster(3)
    decision = decide(observed)
    assert isinstance(decision.step, InSync)
    status = next_status(_round(observed, decision), None, T0)
    assert status.phase is ClusterPhase.RUNNING
    assert _cond(status, "Available").status is ConditionStatus.TRUE
    assert _cond(status, "Progressing").status is ConditionStatus.FALSE
    assert _cond(status, "Degraded").status is ConditionStatus.FALSE
    assert status.current_version == "3.5.17"
    assert status.ready_replicas == 3


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    observed = cluster(3)
    first = next_status(_round(observed, decide(observed)), None, T0)
    again = next_status(_round(observed, decide(observed)), first, T0 + timedelta(minutes=5))
    assert _cond(again, "Available").last_transition_time == T0
    broken = unhealthy(unhealthy(observed, 1), 2)
    lost = next_status(_round(broken, decide(broken), ready=1), again, T0 + timedelta(minutes=9))
    assert _cond(lost, "Available").status is ConditionStatus.FALSE
    assert _cond(lost, "Available").last_transition_time == T0 + timedelta(minutes=9)


def test_quorum_lost_is_failed_and_degraded_with_the_planner_reason() -> None:
    broken = unhealthy(unhealthy(cluster(3), 1), 2)
    decision = decide(broken)
    assert isinstance(decision.step, Degraded) and decision.reason is Reason.QUORUM_LOST
    status = next_status(_round(broken, decision, ready=1), None, T0)
    assert status.phase is ClusterPhase.FAILED
    degraded = _cond(status, "Degraded")
    assert degraded.status is ConditionStatus.TRUE and degraded.reason == "QuorumLost"


def test_a_failed_step_is_reported_in_progressing_and_last_operation() -> None:
    observed = fresh(3)
    decision = decide(observed)
    status = next_status(_round(observed, decision, ready=0, error="boom"), None, T0)
    assert status.phase is ClusterPhase.CREATING
    assert _cond(status, "Progressing").reason == "StepFailed"
    assert status.last_operation is not None and status.last_operation.state.value == "Error"
    assert "boom" in status.last_operation.description


def test_a_step_failing_the_same_way_again_does_not_rewrite_the_last_operation() -> None:
    observed = fresh(3)
    decision = decide(observed)
    first = next_status(_round(observed, decision, ready=0, error="boom"), None, T0)
    again = next_status(
        _round(observed, decision, ready=0, error="boom"), first, T0 + timedelta(seconds=40)
    )
    assert again == first, "an unchanged status is not written"


def test_a_failed_object_apply_is_a_degraded_condition() -> None:
    from dataclasses import replace

    observed = cluster(3)
    r = replace(_round(observed, decide(observed)), objects_error="Service demo: forbidden")
    status = next_status(r, None, T0)
    degraded = _cond(status, "Degraded")
    assert degraded.status is ConditionStatus.TRUE
    assert (degraded.reason, degraded.message) == ("ObjectApplyFailed", "Service demo: forbidden")
    assert status.phase is ClusterPhase.RUNNING, "the members themselves are fine"


def test_waiting_keeps_the_last_operation() -> None:
    observed = fresh(3)
    acted = next_status(_round(observed, decide(observed), ready=0), None, T0)
    waiting = Decision(Wait(Reason.BOOTSTRAPPING), Reason.BOOTSTRAPPING, "waiting")
    later = next_status(_round(observed, waiting, ready=0), acted, T0 + timedelta(seconds=5))
    assert later.last_operation == acted.last_operation


def test_phases_follow_reasons() -> None:
    def d(reason: Reason) -> Decision:
        return Decision(Wait(reason), reason, "")

    assert phase_of(d(Reason.LEARNER_CATCHING_UP), None) is ClusterPhase.SCALING
    assert phase_of(d(Reason.BOOTSTRAPPING), None) is ClusterPhase.CREATING
    assert phase_of(d(Reason.UPGRADE), None) is ClusterPhase.UPGRADING
    assert phase_of(d(Reason.POD_TERMINATING), None) is ClusterPhase.HEALING


def test_the_last_operation_succeeds_once_the_cluster_is_in_sync() -> None:
    observed = fresh(3)
    acted = next_status(_round(observed, decide(observed), ready=0), None, T0)
    healthy = cluster(3)
    done = next_status(_round(healthy, decide(healthy)), acted, T0 + timedelta(seconds=9))
    assert done.last_operation is not None
    assert done.last_operation.state.value == "Succeeded"
    assert done.last_operation.type == acted.last_operation.type  # type: ignore[union-attr]


def _versions_round(observed, versions):  # type: ignore[no-untyped-def]
    members = [MemberStatus(name=name(i), version=v) for i, v in enumerate(versions)]
    return Round(observed, decide(observed), members, 3, "abc", name(0), "http://x:2379")


def test_current_version_is_the_oldest_member_version_until_every_member_runs_the_new_one() -> None:
    from unit.support.observed import pod, spec

    o = pod(pod(spec(cluster(3), version="3.6.0"), 2, version="3.6.0"), 1, version="3.6.0")
    mixed = next_status(_versions_round(o, ["3.5.17", "3.6.0", "3.6.0"]), None, T0)
    assert mixed.current_version == "3.5.17"
    assert [m.version for m in mixed.members or []] == ["3.5.17", "3.6.0", "3.6.0"]
    assert mixed.phase is ClusterPhase.UPGRADING
    # etcd-0 restarting at the new version does not answer yet: the previous value stays.
    o = pod(o, 0, version="3.6.0", ready=False)
    restarting = next_status(_versions_round(o, [None, "3.6.0", "3.6.0"]), mixed, T0)
    assert restarting.current_version == "3.5.17"
    done = next_status(_versions_round(o, ["3.6.0"] * 3), restarting, T0)
    assert done.current_version == "3.6.0"


def test_member_rows_name_members_by_peer_url_and_report_what_they_said() -> None:
    from etcd_operator.status import round_of
    from unit.support.observed import mid, set_health

    observed = set_health(cluster(3), 2, reachable=False, healthy=False)
    r = round_of(observed, decide(observed), cluster_id=0xABC, error=None)
    assert [m.name for m in r.members] == [name(0), name(1), name(2)]
    assert r.members[0].id == f"{mid(0):x}" and r.members[0].healthy
    assert (r.members[2].healthy, r.members[2].version, r.members[2].db_size) == (
        False,
        None,
        None,
    )
    assert r.leader == name(0)
    assert r.cluster_id == "abc"
    assert r.client_endpoint == "http://etcd-client.ns.svc:2379"
    assert r.ready_replicas == 3


def test_the_downgrade_target_is_recorded_when_enabled_and_kept_while_nobody_answers() -> None:
    from etcd_operator.planner import EnableDowngrade
    from unit.support.observed import replace, set_health

    def members(*versions: str | None) -> list[MemberStatus]:
        return [MemberStatus(name=name(i), version=v) for i, v in enumerate(versions)]

    def at(o, versions, decision, previous):  # type: ignore[no-untyped-def]
        r = Round(o, decision, members(*versions), 1, "abc", None, "http://x:2379")
        return next_status(r, previous, T0)

    o = cluster(1)
    enable = Decision(EnableDowngrade("3.5.35"), Reason.ENABLE_DOWNGRADE, "enable")
    first = at(o, ["3.6.16"], enable, None)
    assert first.downgrade_target == "3.5.0"
    waiting = Decision(Wait(Reason.DOWNGRADE_PENDING), Reason.DOWNGRADE_PENDING, "wait")
    # etcd's own record while a 3.6 member answers: none enabled means none.
    told = set_health(o, 0, storage_version="3.6.0", downgrade_target=None)
    assert at(told, ["3.6.16"], waiting, first).downgrade_target is None
    # Nobody answers (the only member restarting): kept.
    gone = replace(o, member_health={}, members=None)
    kept = at(gone, [None], waiting, first)
    assert kept.downgrade_target == "3.5.0"
    # Every voter answers at the target's minor: etcd has ended it.
    assert at(o, ["3.5.35"], waiting, kept).downgrade_target is None


def test_a_replacement_is_recorded_by_its_step_kept_while_asked_for_and_gone_with_it() -> None:
    import dataclasses

    from etcd_operator.planner import RecordReplacement

    asked = dataclasses.replace(cluster(3), replace_request=name(1))
    record = Decision(RecordReplacement(name(1), name(1), 0x101), Reason.REPLACE_REQUESTED, "")
    status = next_status(_round(asked, record), None, T0)
    assert status.replacement is not None
    assert (status.replacement.request, status.replacement.member_id) == (name(1), "101")
    dumped = status.model_dump(mode="json", by_alias=True)["replacement"]
    assert dumped == {"request": name(1), "member": name(1), "memberID": "101"}
    later = next_status(_round(asked, Decision(InSync(), Reason.IN_SYNC, "")), status, T0)
    assert later.replacement == status.replacement
    done = next_status(_round(cluster(3), Decision(InSync(), Reason.IN_SYNC, "")), later, T0)
    assert done.replacement is None
