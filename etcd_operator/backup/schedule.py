"""What an EtcdBackupSchedule does next (pure): which run is due, which backups to prune,
which restore drill to start, and the names of what it creates.

The shell observes the schedule and the EtcdBackups (and drill EtcdRestores) it owns, each
labelled with the time it was scheduled for; `plan` returns what to create and delete now
and when to look again. The scheduled time of the newest object the schedule owns is a
durable fact, so a run is never made twice, even if status was not written before a crash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from etcd_operator.api.backup import BackupPhase
from etcd_operator.api.backup_schedule import EtcdBackupScheduleSpec, Retention
from etcd_operator.api.cluster import MAX_CLUSTER_NAME_LENGTH
from etcd_operator.api.duration import parse_duration

# Drill EtcdRestores kept (with their results); older ones are deleted.
DRILL_HISTORY = 3
_MINUTE = timedelta(minutes=1)


def _zone(time_zone: str | None) -> ZoneInfo:
    return ZoneInfo(time_zone or "UTC")


def latest_run(expression: str, time_zone: str | None, now: datetime) -> datetime:
    """The newest scheduled time at or before `now` (cron has minute resolution)."""
    local = now.astimezone(_zone(time_zone))
    # get_prev is strictly before its start: start at the next whole minute.
    start = local.replace(second=0, microsecond=0) + _MINUTE
    found: datetime = croniter(expression, start).get_prev(datetime)
    return found.astimezone(UTC)


def next_run(expression: str, time_zone: str | None, now: datetime) -> datetime:
    """The first scheduled time strictly after `now`."""
    found: datetime = croniter(expression, now.astimezone(_zone(time_zone))).get_next(datetime)
    return found.astimezone(UTC)


@dataclass(frozen=True)
class Due:
    run: datetime | None  # the scheduled time a backup is due for now
    next: datetime | None  # the next scheduled time after now (None: suspended)
    missed: datetime | None = None  # a run skipped: later than the starting deadline


def due(
    now: datetime,
    expression: str,
    time_zone: str | None,
    *,
    last: datetime | None,
    created: datetime,
    suspend: bool = False,
    deadline_seconds: int | None = None,
) -> Due:
    """The one run due at `now`: the newest scheduled time after `last` (or after the
    schedule's creation), however many were missed; none while suspended or when it is
    older than the starting deadline."""
    if suspend:
        return Due(None, None)
    upcoming = next_run(expression, time_zone, now)
    latest = latest_run(expression, time_zone, now)
    if latest <= (last or created):
        return Due(None, upcoming)
    if deadline_seconds is not None and now - latest > timedelta(seconds=deadline_seconds):
        return Due(None, upcoming, missed=latest)
    return Due(latest, upcoming)


@dataclass(frozen=True)
class OwnedBackup:
    """An EtcdBackup the schedule created, as observed."""

    name: str
    scheduled: datetime  # the run it was created for
    phase: BackupPhase | None = None
    completion_time: datetime | None = None
    failed_reason: str | None = None
    deleting: bool = False  # deletionTimestamp set: its snapshot is being removed

    @property
    def final(self) -> bool:
        return self.phase in (BackupPhase.SUCCEEDED, BackupPhase.FAILED)


def _newest_first(backups: Iterable[OwnedBackup]) -> list[OwnedBackup]:
    return sorted(backups, key=lambda b: (b.scheduled, b.name), reverse=True)


def prune(
    backups: Sequence[OwnedBackup],
    retention: Retention | None,
    failed_history_limit: int,
    now: datetime,
) -> list[str]:
    """Names of the backups to delete: Succeeded ones beyond keepLast or older than maxAge
    (never the newest Succeeded one), Failed ones beyond the failed history. Backups that
    still run or are already being deleted are never chosen."""
    live = [b for b in backups if not b.deleting]
    succeeded = _newest_first(b for b in live if b.phase == BackupPhase.SUCCEEDED)
    failed = _newest_first(b for b in live if b.phase == BackupPhase.FAILED)
    doomed: list[str] = []
    if retention is not None:
        oldest = None if retention.max_age is None else now - parse_duration(retention.max_age)
        for index, backup in enumerate(succeeded[1:], start=1):
            too_many = retention.keep_last is not None and index >= retention.keep_last
            too_old = oldest is not None and backup.scheduled < oldest
            if too_many or too_old:
                doomed.append(backup.name)
    doomed += [b.name for b in failed[failed_history_limit:]]
    return doomed


@dataclass(frozen=True)
class OwnedDrill:
    """A restore drill (EtcdRestore) the schedule created, as observed."""

    name: str
    scheduled: datetime
    final: bool = False  # the restore Succeeded or Failed
    result: str | None = None  # status.drill.result: Passed / Failed
    result_time: datetime | None = None
    backup: str | None = None
    deleting: bool = False


@dataclass(frozen=True)
class Summary:
    """Status fields read off the owned backups (merged with what status already says:
    pruned backups are gone, their times are not)."""

    active: str | None
    last_successful_time: datetime | None
    last_successful_backup: str | None
    last_failed_time: datetime | None
    last_failed_backup: str | None
    last_failed_reason: str | None
    newest_success: str | None


def summarize(
    backups: Sequence[OwnedBackup],
    *,
    last_successful: tuple[datetime | None, str | None] = (None, None),
    last_failed: tuple[datetime | None, str | None, str | None] = (None, None, None),
) -> Summary:
    ordered = _newest_first(backups)
    active = next((b.name for b in ordered if not b.final and not b.deleting), None)
    successes = [b for b in ordered if b.phase == BackupPhase.SUCCEEDED and not b.deleting]
    ok_time, ok_name = last_successful
    if successes:
        newest = successes[0]
        when = newest.completion_time or newest.scheduled
        if ok_time is None or when >= ok_time:
            ok_time, ok_name = when, newest.name
    fail_time, fail_name, fail_reason = last_failed
    failures = [b for b in ordered if b.phase == BackupPhase.FAILED]
    if failures:
        newest = failures[0]
        when = newest.completion_time or newest.scheduled
        if fail_time is None or when >= fail_time:
            fail_time, fail_name, fail_reason = when, newest.name, newest.failed_reason
    return Summary(
        active=active,
        last_successful_time=ok_time,
        last_successful_backup=ok_name,
        last_failed_time=fail_time,
        last_failed_backup=fail_name,
        last_failed_reason=fail_reason,
        newest_success=successes[0].name if successes else None,
    )


@dataclass(frozen=True)
class Plan:
    create: datetime | None  # create the backup of this run now
    waiting_for: str | None  # a run is due but this backup still runs (Forbid)
    missed: datetime | None  # a run skipped (past the starting deadline)
    prune: tuple[str, ...]  # backups to delete
    next_time: datetime | None  # the next scheduled backup (None: suspended)
    last_schedule_time: datetime | None
    drill: datetime | None  # create the restore drill of this run now (of newest_success)
    drill_prune: tuple[str, ...]  # drill EtcdRestores to delete
    next_drill: datetime | None
    last_drill_schedule_time: datetime | None
    summary: Summary

    @property
    def wake(self) -> datetime | None:
        """When to look again without being told (watch events wake the shell earlier)."""
        times = [t for t in (self.next_time, self.next_drill) if t is not None]
        return min(times) if times else None


def _newest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def plan(
    now: datetime,
    spec: EtcdBackupScheduleSpec,
    *,
    created: datetime,
    backups: Sequence[OwnedBackup],
    drills: Sequence[OwnedDrill] = (),
    last_schedule_time: datetime | None = None,
    last_drill_schedule_time: datetime | None = None,
    last_successful: tuple[datetime | None, str | None] = (None, None),
    last_failed: tuple[datetime | None, str | None, str | None] = (None, None, None),
) -> Plan:
    last = _newest(last_schedule_time, *(b.scheduled for b in backups))
    when = due(
        now,
        spec.schedule,
        spec.time_zone,
        last=last,
        created=created,
        suspend=spec.suspend,
        deadline_seconds=spec.starting_deadline_seconds,
    )
    summary = summarize(backups, last_successful=last_successful, last_failed=last_failed)
    create, waiting_for = when.run, None
    if create is not None and summary.active is not None:
        create, waiting_for = None, summary.active  # Forbid: the run waits, once
    doomed = tuple(prune(backups, spec.retention, spec.failed_history_limit, now))

    drill_at = next_drill = None
    last_drill = _newest(last_drill_schedule_time, *(d.scheduled for d in drills))
    drill_prune: tuple[str, ...] = ()
    if spec.restore_drill is not None:
        drill_due = due(
            now,
            spec.restore_drill.schedule,
            spec.time_zone,
            last=last_drill,
            created=created,
            suspend=spec.suspend,
            deadline_seconds=spec.starting_deadline_seconds,
        )
        next_drill = drill_due.next
        running = any(not d.final and not d.deleting for d in drills)
        # Nothing to drill before a backup Succeeded; one drill at a time.
        if drill_due.run is not None and summary.newest_success is not None and not running:
            drill_at = drill_due.run
        done = sorted(
            (d for d in drills if not d.deleting), key=lambda d: (d.scheduled, d.name), reverse=True
        )
        drill_prune = tuple(d.name for d in done[DRILL_HISTORY:] if d.final)
    return Plan(
        create=create,
        waiting_for=waiting_for,
        missed=when.missed,
        prune=doomed,
        next_time=when.next,
        last_schedule_time=_newest(last, create),
        drill=drill_at,
        drill_prune=drill_prune,
        next_drill=next_drill,
        last_drill_schedule_time=_newest(last_drill, drill_at),
        summary=summary,
    )


def _minutes(time: datetime) -> int:
    return int(time.timestamp()) // 60


def backup_name(schedule: str, run: datetime) -> str:
    """`<schedule>-<minutes since the epoch>`: one name per run, so a run re-tried after a
    crash finds its backup instead of making a second one."""
    return f"{schedule}-{_minutes(run)}"


def drill_name(schedule: str, run: datetime) -> str:
    """The drill EtcdRestore of one run."""
    return f"{schedule}-drill-{_minutes(run)}"


def drill_cluster_name(schedule: str, run: datetime) -> str:
    """The throwaway cluster of one drill: a DNS-1035 label of at most
    MAX_CLUSTER_NAME_LENGTH characters (a schedule's name may hold dots or lead with a
    digit; a cluster's may not)."""
    suffix = f"-d{_minutes(run)}"
    safe = re.sub(r"[^a-z0-9-]", "-", schedule)
    if not safe[:1].isalpha():
        safe = "d" + safe
    stem = safe[: MAX_CLUSTER_NAME_LENGTH - len(suffix)].rstrip("-")
    return stem + suffix
