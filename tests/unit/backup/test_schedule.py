"""What an EtcdBackupSchedule does next (pure): due runs, retention, Forbid, drills, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcd_operator.api.backup import BackupPhase
from etcd_operator.api.backup_schedule import EtcdBackupScheduleSpec, Retention
from etcd_operator.api.cluster import CLUSTER_NAME_PATTERN, MAX_CLUSTER_NAME_LENGTH
from etcd_operator.backup.schedule import (
    DRILL_HISTORY,
    OwnedBackup,
    OwnedDrill,
    backup_name,
    drill_cluster_name,
    due,
    latest_run,
    next_run,
    plan,
    prune,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUCCEEDED, FAILED, RUNNING = BackupPhase.SUCCEEDED, BackupPhase.FAILED, BackupPhase.RUNNING
DEST = {"s3": {"bucket": "backups"}}


def _spec(**extra: Any) -> EtcdBackupScheduleSpec:
    body = {"clusterName": "demo", "schedule": "0 * * * *", "backupTemplate": {"destination": DEST}}
    return EtcdBackupScheduleSpec.model_validate({**body, **extra}, by_alias=True)


def _backup(hours: int, phase: BackupPhase | None = SUCCEEDED, **extra: Any) -> OwnedBackup:
    at = T0 + timedelta(hours=hours)
    return OwnedBackup(backup_name("s", at), at, phase, **extra)


# -- due ---------------------------------------------------------------------------------


def test_latest_and_next_runs_at_and_between_scheduled_times() -> None:
    assert latest_run("0 * * * *", None, T0) == T0  # exactly on time counts
    assert latest_run("0 * * * *", None, T0 + timedelta(minutes=59)) == T0
    assert next_run("0 * * * *", None, T0) == T0 + timedelta(hours=1)
    assert next_run("0 * * * *", None, T0 - timedelta(seconds=1)) == T0


def test_time_zone_moves_the_runs() -> None:
    # 03:00 in Berlin (UTC+1 in winter) is 02:00 UTC.
    got = next_run("0 3 * * *", "Europe/Berlin", datetime(2026, 1, 10, tzinfo=UTC))
    assert got == datetime(2026, 1, 10, 2, 0, tzinfo=UTC)


def test_nothing_is_due_before_the_first_run_after_creation() -> None:
    created = T0 + timedelta(minutes=10)
    got = due(T0 + timedelta(minutes=20), "0 * * * *", None, last=None, created=created)
    assert (got.run, got.next) == (None, T0 + timedelta(hours=1))
    got = due(T0 + timedelta(hours=1), "0 * * * *", None, last=None, created=created)
    assert got.run == T0 + timedelta(hours=1)


def test_a_run_is_made_once() -> None:
    got = due(T0 + timedelta(minutes=5), "0 * * * *", None, last=T0, created=T0)
    assert got.run is None


def test_after_an_outage_only_the_latest_missed_run_is_made() -> None:
    now = T0 + timedelta(hours=30, minutes=7)
    got = due(now, "0 * * * *", None, last=T0, created=T0)
    assert got.run == T0 + timedelta(hours=30)
    assert got.next == T0 + timedelta(hours=31)


def test_a_run_older_than_the_starting_deadline_is_skipped() -> None:
    late = T0 + timedelta(minutes=10)
    got = due(
        late, "0 * * * *", None, last=T0 - timedelta(hours=1), created=T0, deadline_seconds=300
    )
    assert (got.run, got.missed) == (None, T0)
    early = T0 + timedelta(minutes=4)
    got = due(
        early, "0 * * * *", None, last=T0 - timedelta(hours=1), created=T0, deadline_seconds=300
    )
    assert got.run == T0


def test_suspended_runs_nothing_and_has_no_next_time() -> None:
    got = due(T0 + timedelta(hours=3), "0 * * * *", None, last=T0, created=T0, suspend=True)
    assert (got.run, got.next) == (None, None)


@settings(max_examples=300, deadline=None)
@given(
    last=st.integers(min_value=0, max_value=10_000),
    elapsed=st.integers(min_value=0, max_value=100_000),
    deadline=st.none() | st.integers(min_value=1, max_value=10_000),
    minutes=st.sampled_from(["*", "*/5", "0", "17", "0,30"]),
)
def test_due_runs_are_scheduled_times_in_the_window_and_the_latest_one(
    last: int, elapsed: int, deadline: int | None, minutes: str
) -> None:
    expression = f"{minutes} * * * *"
    created = T0
    last_time = latest_run(expression, None, T0 + timedelta(minutes=last))
    now = last_time + timedelta(minutes=elapsed, seconds=elapsed % 60)
    got = due(now, expression, None, last=last_time, created=created, deadline_seconds=deadline)
    assert got.next is not None and got.next > now
    latest = latest_run(expression, None, now)
    if got.run is not None:
        # Exactly one run: the newest scheduled time not after now, after the last run.
        assert got.run == latest and last_time < got.run <= now
        assert deadline is None or (now - got.run).total_seconds() <= deadline
    elif got.missed is None:
        assert latest <= max(last_time, created)
    # Making the due run then asking again never yields a second run at the same time.
    if got.run is not None:
        again = due(now, expression, None, last=got.run, created=created)
        assert again.run is None


# -- prune -------------------------------------------------------------------------------


def test_keep_last_prunes_the_older_succeeded_backups() -> None:
    backups = [_backup(h) for h in range(5)]
    got = prune(backups, Retention(keep_last=2), 3, T0 + timedelta(hours=5))
    assert got == [backups[2].name, backups[1].name, backups[0].name]


def test_max_age_prunes_old_ones_but_never_the_newest_success() -> None:
    backups = [_backup(h) for h in range(3)]
    now = T0 + timedelta(days=30)
    got = prune(backups, Retention(max_age="24h"), 3, now)
    assert got == [backups[1].name, backups[0].name]  # backups[2] is the newest Succeeded


def test_keep_last_and_max_age_together_prune_what_either_would() -> None:
    backups = [_backup(h) for h in range(6)]
    now = T0 + timedelta(hours=5, minutes=30)
    got = prune(backups, Retention(keep_last=4, max_age="3h"), 3, now)
    # keepLast 4 keeps hours 5..2; maxAge 3h keeps hours 3..5 (2:00 is 3h30m old).
    assert sorted(got) == sorted(b.name for b in backups[:3])


def test_running_deleting_and_failed_within_the_history_are_kept() -> None:
    running = _backup(9, RUNNING)
    deleting = _backup(1, deleting=True)
    failed = [_backup(h, FAILED) for h in (2, 3, 4, 5)]
    ok = _backup(0)
    got = prune([running, deleting, ok, *failed], Retention(keep_last=1), 3, T0)
    assert got == [failed[0].name]  # only the oldest of four failures


def test_no_retention_keeps_every_success() -> None:
    backups = [_backup(h) for h in range(4)]
    assert prune(backups, None, 3, T0 + timedelta(days=365)) == []


@settings(max_examples=300, deadline=None)
@given(
    phases=st.lists(st.sampled_from([SUCCEEDED, FAILED, RUNNING, None]), max_size=12),
    keep_last=st.none() | st.integers(min_value=1, max_value=5),
    max_age_hours=st.none() | st.integers(min_value=1, max_value=12),
    failed_limit=st.integers(min_value=0, max_value=4),
    now_hours=st.integers(min_value=0, max_value=48),
)
def test_prune_properties(
    phases: list[BackupPhase | None], keep_last: int | None, max_age_hours: int | None,
    failed_limit: int, now_hours: int,
) -> None:  # fmt: skip
    backups = [_backup(h, phase) for h, phase in enumerate(phases)]
    retention = (
        None
        if keep_last is None and max_age_hours is None
        else Retention(
            keep_last=keep_last, max_age=None if max_age_hours is None else f"{max_age_hours}h"
        )
    )
    now = T0 + timedelta(hours=now_hours)
    got = set(prune(backups, retention, failed_limit, now))
    by_name = {b.name: b for b in backups}
    successes = [b for b in backups if b.phase == SUCCEEDED]
    failures = [b for b in backups if b.phase == FAILED]
    # Never a running backup; never the newest success.
    assert all(by_name[n].final for n in got)
    if successes:
        assert successes[-1].name not in got
    # Failed: exactly the oldest beyond the limit.
    assert {n for n in got if by_name[n].phase == FAILED} == {
        b.name for b in failures[: max(0, len(failures) - failed_limit)]
    }
    kept = [b for b in successes if b.name not in got]
    if retention is not None and successes:
        if keep_last is not None:
            assert len(kept) <= keep_last
        if max_age_hours is not None:
            oldest = now - timedelta(hours=max_age_hours)
            assert all(b.scheduled >= oldest for b in kept[:-1])
    else:
        assert kept == successes


# -- plan --------------------------------------------------------------------------------


def test_forbid_waits_for_the_running_backup_then_makes_the_run_once() -> None:
    spec = _spec()
    running = _backup(0, RUNNING)
    now = T0 + timedelta(hours=1, minutes=1)
    got = plan(now, spec, created=T0 - timedelta(days=1), backups=[running])
    assert (got.create, got.waiting_for) == (None, running.name)
    assert got.last_schedule_time == T0  # the waiting run is still to be made
    done = OwnedBackup(running.name, running.scheduled, SUCCEEDED)
    got = plan(now, spec, created=T0 - timedelta(days=1), backups=[done])
    assert got.create == T0 + timedelta(hours=1)
    assert got.last_schedule_time == T0 + timedelta(hours=1)


def test_the_owned_backups_are_the_record_even_when_status_was_not_written() -> None:
    spec = _spec()
    made = _backup(1, RUNNING)
    got = plan(T0 + timedelta(hours=1, seconds=5), spec, created=T0, backups=[made])
    assert got.create is None and got.last_schedule_time == made.scheduled


def test_suspend_still_prunes() -> None:
    spec = _spec(suspend=True, retention={"keepLast": 1})
    backups = [_backup(0), _backup(1)]
    got = plan(T0 + timedelta(hours=5), spec, created=T0, backups=backups)
    assert got.create is None and got.next_time is None and got.prune == (backups[0].name,)


def test_summary_keeps_times_of_pruned_backups_and_names_the_newest() -> None:
    spec = _spec()
    failed = _backup(2, FAILED, failed_reason="NoSuchBucket", completion_time=T0)
    got = plan(
        T0 + timedelta(hours=2, minutes=5), spec, created=T0, backups=[_backup(1), failed],
        last_successful=(T0 - timedelta(days=1), "old"),
    )  # fmt: skip
    summary = got.summary
    assert summary.last_successful_backup == _backup(1).name
    assert (summary.last_failed_backup, summary.last_failed_reason) == (failed.name, "NoSuchBucket")
    assert summary.newest_success == _backup(1).name


def test_drills_need_a_success_run_one_at_a_time_and_keep_the_last_three() -> None:
    spec = _spec(restoreDrill={"schedule": "30 * * * *"})
    now = T0 + timedelta(hours=3, minutes=31)
    got = plan(now, spec, created=T0, backups=[])
    assert got.drill is None  # nothing to drill yet
    got = plan(now, spec, created=T0, backups=[_backup(3)])
    assert got.drill == T0 + timedelta(hours=3, minutes=30)
    old = [
        OwnedDrill(f"d{h}", T0 + timedelta(hours=h, minutes=30), final=True, result="Passed")
        for h in range(DRILL_HISTORY + 2)
    ]
    got = plan(now, spec, created=T0, backups=[_backup(3)], drills=old)
    assert got.drill_prune == ("d1", "d0")
    running = OwnedDrill("busy", T0 + timedelta(hours=2, minutes=30))
    got = plan(now, spec, created=T0, backups=[_backup(3)], drills=[running])
    assert got.drill is None


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "x" * 41, "9lives", "with.dots.in-it", "b-"])
def test_names_fit_their_limits(name: str) -> None:
    import re

    run = datetime(2100, 1, 1, tzinfo=UTC)
    assert len(backup_name(name, run)) <= 50
    cluster = drill_cluster_name(name, run)
    assert len(cluster) <= MAX_CLUSTER_NAME_LENGTH and re.fullmatch(CLUSTER_NAME_PATTERN, cluster)
    assert backup_name(name, run) != backup_name(name, run + timedelta(minutes=1))


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=6 * 60 * 60), min_size=1, max_size=30),
    running_rounds=st.integers(min_value=0, max_value=2),
)
def test_rounds_over_outages_make_each_run_at_most_once_and_one_per_round(
    gaps: list[int], running_rounds: int
) -> None:
    """The operator looks at random times (long gaps are outages); a backup ends after
    `running_rounds` more rounds. Each round makes at most one backup, for the newest run
    due; no run is made twice; none starts while another runs."""
    spec = _spec(schedule="*/15 * * * *")
    created = T0
    now = T0
    backups: list[OwnedBackup] = []
    age: dict[str, int] = {}
    for gap in gaps:
        now += timedelta(seconds=gap)
        backups = [
            OwnedBackup(
                b.name, b.scheduled, SUCCEEDED if age[b.name] >= running_rounds else RUNNING
            )
            for b in backups
        ]
        got = plan(now, spec, created=created, backups=backups)
        running = [b for b in backups if not b.final]
        if got.create is not None:
            assert not running
            assert got.create == latest_run(spec.schedule, None, now)
            assert all(b.scheduled < got.create for b in backups)
            name = backup_name("s", got.create)
            backups.append(OwnedBackup(name, got.create, RUNNING))
            age[name] = -1
        for b in backups:
            age[b.name] += 1
    times = [b.scheduled for b in backups]
    assert times == sorted(set(times))
    assert len(backups) <= len(gaps)
