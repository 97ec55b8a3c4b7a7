"""NOSPACE recovery and defragmentation: the pure decisions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from etcd_operator.planner import (
    Compact,
    Defragment,
    DefragPolicy,
    DefragRun,
    DefragTrigger,
    DisarmAlarm,
    InSync,
    Observed,
    Reason,
    RemoveMember,
    SpaceState,
    UpgradeMember,
    Wait,
    decide,
    next_step,
)
from etcd_operator.planner.space import schedule_due
from unit.support.observed import cluster, mid, name, pod, set_health, spec, unhealthy

MIB = 1024**2
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def sized(o: Observed, size: int, in_use: int, *ordinals: int) -> Observed:
    for i in ordinals or range(len(o.members or ())):
        o = set_health(o, i, db_size=size, db_size_in_use=in_use)
    return o


def space(o: Observed, **changes: object) -> Observed:
    return dataclasses.replace(o, space=dataclasses.replace(o.space, **changes), now=NOW)


NOSPACE_ON_0 = ((mid(0), "NOSPACE"),)


def full(n: int = 3, *, leader: int = 0) -> Observed:
    """Every member's backend at the 16 MiB quota, mostly history; etcd-0 raised NOSPACE."""
    o = sized(cluster(n, leader=leader), 16 * MIB, 15 * MIB)
    return space(o, alarms=NOSPACE_ON_0, quota=16 * MIB)


def test_nospace_is_compacted_first() -> None:
    d = decide(full())
    assert d.step == Compact() and d.reason is Reason.COMPACT


def test_after_compaction_members_are_defragmented_followers_first_and_the_leader_last() -> None:
    o = space(full(leader=1), compacted_at=NOW - timedelta(seconds=5))
    assert next_step(o) == Defragment(mid(0), name(0), DefragTrigger.NO_SPACE, new_run=True)
    o = sized(space(o, last_defrag=DefragRun("NoSpace", NOW, (name(0),))), 2 * MIB, 2 * MIB, 0)
    assert next_step(o) == Defragment(mid(2), name(2), DefragTrigger.NO_SPACE)
    o = space(o, last_defrag=DefragRun("NoSpace", NOW, (name(0), name(2))))
    assert next_step(o) == Defragment(mid(1), name(1), DefragTrigger.NO_SPACE)  # the leader


def test_a_run_from_before_the_compaction_does_not_count() -> None:
    earlier = DefragRun("NoSpace", NOW - timedelta(hours=1), (name(0), name(1), name(2)))
    o = space(full(), compacted_at=NOW - timedelta(seconds=5), last_defrag=earlier)
    assert next_step(o) == Defragment(mid(1), name(1), DefragTrigger.NO_SPACE, new_run=True)


ALL_DONE = DefragRun("NoSpace", NOW, (name(0), name(1), name(2)))


def test_nospace_is_disarmed_once_every_backend_shrank() -> None:
    o = space(full(), compacted_at=NOW, db_size_before=16 * MIB, last_defrag=ALL_DONE)
    d = decide(sized(o, 2 * MIB, 2 * MIB))
    assert d.step == DisarmAlarm((mid(0),)) and d.reason is Reason.SPACE_RECOVERED
    assert "16.0 MiB to 2.0 MiB" in d.message


def test_a_member_that_compacted_late_is_defragmented_again() -> None:
    o = space(full(), compacted_at=NOW, last_defrag=ALL_DONE)
    o = sized(sized(o, 2 * MIB, 2 * MIB), 16 * MIB, 16 * MIB, 2)
    assert next_step(o) == Defragment(mid(2), name(2), DefragTrigger.NO_SPACE)


def test_live_data_filling_the_quota_is_reported_not_disarmed_in_a_loop() -> None:
    o = sized(space(full(), compacted_at=NOW, last_defrag=ALL_DONE), 15 * MIB, 15 * MIB)
    d = decide(o)
    assert d.reason is Reason.NO_SPACE
    assert "quotaBackendBytes" in d.message


def test_a_raised_quota_is_rolled_out_before_the_alarm_is_judged_against_it() -> None:
    o = sized(space(full(), compacted_at=NOW, last_defrag=ALL_DONE), 15 * MIB, 15 * MIB)
    o = space(pod(o, 2, outdated=True), quota=64 * MIB)  # spec.etcd.quotaBackendBytes raised
    d = decide(o)
    assert isinstance(d.step, UpgradeMember) and d.reason is Reason.ROLLING_RESTART
    assert d.step.member == name(2)
    assert isinstance(next_step(pod(o, 2, outdated=False)), DisarmAlarm)


def test_a_version_change_is_not_rolled_out_by_nospace_recovery() -> None:
    """The version rules run after the alarm and may refuse the change (e.g. two minors
    down): a restart to apply the quota must not change the version behind their back."""
    o = sized(space(full(), compacted_at=NOW, last_defrag=ALL_DONE), 15 * MIB, 15 * MIB)
    o = space(pod(o, 2, outdated=True), quota=64 * MIB)
    running = o.pods[name(2)].version
    o = dataclasses.replace(o, spec=dataclasses.replace(o.spec, version="3.4.20"))
    assert running is not None and running != "3.4.20"
    assert isinstance(next_step(o), DisarmAlarm)


def test_nospace_waits_for_an_unhealthy_member_and_never_defragments_then() -> None:
    o = unhealthy(space(full(), compacted_at=NOW), 2)
    assert next_step(o) == Wait(Reason.MEMBER_UNHEALTHY)


def test_a_corrupt_alarm_beside_nospace_is_resolved_first() -> None:
    # CORRUPT (planner/corrupt_alarm.py) refuses compaction too: its member goes first.
    o = space(full(), alarms=(*NOSPACE_ON_0, (mid(1), "CORRUPT")))
    d = decide(o)
    assert d.reason is Reason.REPLACE_ALARMED_MEMBER and d.step == RemoveMember(mid(1), name(1))


def test_another_alarm_kind_is_reported_and_left_alone() -> None:
    o = space(full(), alarms=(*NOSPACE_ON_0, (mid(1), "UNKNOWN")))
    d = decide(o)
    assert d.reason is Reason.ALARM_ACTIVE and "UNKNOWN on etcd-1" in d.message


# --- killed between the disarm and the status write that drops the NOSPACE record --------


def after_a_disarm_whose_status_write_was_lost(revision: int) -> Observed:
    """Status still holds the last alarm's records (compacted at revision 100, every member
    defragmented since); the members serve `revision` now."""
    o = space(
        full(),
        compacted_at=NOW - timedelta(minutes=2),
        compacted_revision=100,
        db_size_before=16 * MIB,
        last_defrag=DefragRun("NoSpace", NOW - timedelta(minutes=1), ALL_DONE.members),
    )
    for i in range(3):
        o = set_health(o, i, revision=revision)
    return o


def test_no_alarm_after_the_lost_status_write_changes_nothing() -> None:
    o = space(sized(after_a_disarm_whose_status_write_was_lost(100), 2 * MIB, 2 * MIB), alarms=())
    assert isinstance(next_step(o), InSync)


def test_a_new_nospace_after_the_lost_status_write_starts_with_a_compaction() -> None:
    # Writes resumed after the disarm (revision 100 -> 900) and filled the quota again before
    # the operator's next round: the stale record must not skip the compaction (it would
    # judge the uncompacted backends as live data and stop for good, NoSpace).
    o = after_a_disarm_whose_status_write_was_lost(900)
    assert next_step(o) == Compact()


def test_the_record_of_the_current_alarm_still_counts() -> None:
    # No write since the compaction (etcd refuses them under NOSPACE): the run resumes.
    o = sized(after_a_disarm_whose_status_write_was_lost(100), 2 * MIB, 2 * MIB)
    assert next_step(o) == DisarmAlarm((mid(0),))
    # Records written before the revision was recorded keep their meaning.
    legacy = space(sized(after_a_disarm_whose_status_write_was_lost(900), 2 * MIB, 2 * MIB))
    assert next_step(space(legacy, compacted_revision=None)) == DisarmAlarm((mid(0),))


def test_an_alarm_blocks_scaling_until_recovered() -> None:
    o = spec(full(), replicas=5)
    assert next_step(o) == Compact()


def test_alarms_members_report_but_etcd_did_not_list_stay_degraded() -> None:
    o = set_health(cluster(3), 0, alarms=("memberID:1 alarm:NOSPACE",))
    assert decide(o).reason is Reason.ALARM_ACTIVE


THRESHOLD = DefragPolicy(threshold=0.5, min_db_size=64 * MIB)


def test_threshold_defragments_members_past_it_followers_first() -> None:
    o = space(sized(cluster(3, leader=0), 100 * MIB, 30 * MIB), defrag=THRESHOLD)
    assert next_step(o) == Defragment(mid(1), name(1), DefragTrigger.THRESHOLD, new_run=True)
    o = space(sized(o, 30 * MIB, 30 * MIB, 1, 2), last_defrag=DefragRun("Threshold", NOW, ()))
    assert next_step(o) == Defragment(mid(0), name(0), DefragTrigger.THRESHOLD)


@pytest.mark.parametrize(
    ("size", "in_use"),
    [(100 * MIB, 60 * MIB), (40 * MIB, 4 * MIB)],
    ids=["under the threshold", "under the minimum size"],
)
def test_threshold_leaves_members_alone(size: int, in_use: int) -> None:
    o = space(sized(cluster(3), size, in_use), defrag=THRESHOLD)
    assert next_step(o) == InSync()


def test_no_maintenance_while_anything_else_is_to_be_done() -> None:
    o = space(sized(cluster(3), 100 * MIB, 10 * MIB), defrag=THRESHOLD)
    assert next_step(spec(o, replicas=5)) == next_step(spec(cluster(3), replicas=5))
    assert next_step(unhealthy(o, 1)) == Wait(Reason.MEMBER_UNHEALTHY)
    assert isinstance(next_step(spec(o, version="3.6.0")), UpgradeMember)


SCHEDULE = DefragPolicy(schedule="0 3 * * *", min_db_size=0)


def test_schedule_due_only_after_a_fire_time_passed() -> None:
    base = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert not schedule_due("0 3 * * *", base, base + timedelta(minutes=59))
    assert schedule_due("0 3 * * *", base, base + timedelta(hours=1))


def test_a_due_schedule_runs_every_member_in_turn_then_rests() -> None:
    o = space(sized(cluster(3, leader=2), 8 * MIB, 8 * MIB), defrag=SCHEDULE)
    o = space(o, created=NOW - timedelta(days=2))
    assert next_step(o) == Defragment(mid(0), name(0), DefragTrigger.SCHEDULE, new_run=True)
    o = space(o, last_defrag=DefragRun("Schedule", NOW, (name(0),)))
    assert next_step(o) == Defragment(mid(1), name(1), DefragTrigger.SCHEDULE)
    o = space(o, last_defrag=DefragRun("Schedule", NOW, (name(0), name(1))))
    assert next_step(o) == Defragment(mid(2), name(2), DefragTrigger.SCHEDULE)  # the leader
    o = space(o, last_defrag=DefragRun("Schedule", NOW, (name(0), name(1), name(2))))
    assert next_step(o) == InSync()  # until 03:00 tomorrow


def test_a_schedule_is_not_due_before_its_first_time_after_creation() -> None:
    o = space(cluster(3), defrag=SCHEDULE, created=NOW - timedelta(hours=1))
    assert next_step(o) == InSync()


def test_space_state_defaults_change_nothing() -> None:
    assert cluster(3).space == SpaceState()
    assert next_step(cluster(3)) == InSync()
