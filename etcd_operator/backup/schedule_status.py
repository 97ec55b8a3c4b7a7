"""An EtcdBackupSchedule's status from its plan, and what to tell the user (pure).

Conditions: Ready (the schedule is read and acted on), Suspended, Degraded (the spec is
invalid, or the newest backup of the schedule Failed after its last success).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from etcd_operator.api.backup_schedule import EtcdBackupScheduleStatus, LastDrill
from etcd_operator.api.common import Condition, ConditionStatus, next_condition
from etcd_operator.backup.schedule import Plan

READY = "Ready"
SUSPENDED = "Suspended"
DEGRADED = "Degraded"


def _condition(  # noqa: PLR0917 - one argument per field of a condition
    previous: EtcdBackupScheduleStatus,
    kind: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> Condition:
    return next_condition(previous.conditions or [], kind, status, reason, message, generation, now)


def invalid_status(
    previous: EtcdBackupScheduleStatus, problem: str, generation: int | None, now: datetime
) -> EtcdBackupScheduleStatus:
    """The spec cannot be read (e.g. a cron expression croniter refuses): nothing runs."""
    false, true = ConditionStatus.FALSE, ConditionStatus.TRUE
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "next_schedule_time": None,
            "conditions": [
                _condition(previous, READY, false, "InvalidSpec", problem, generation, now),
                _condition(previous, SUSPENDED, false, "InvalidSpec", "", generation, now),
                _condition(previous, DEGRADED, true, "InvalidSpec", problem, generation, now),
            ],
        }
    )


def schedule_status(
    previous: EtcdBackupScheduleStatus,
    plan: Plan,
    *,
    suspend: bool,
    generation: int | None,
    now: datetime,
    last_drill: LastDrill | None = None,
) -> EtcdBackupScheduleStatus:
    summary = plan.summary
    false, true = ConditionStatus.FALSE, ConditionStatus.TRUE
    failing = summary.last_failed_time is not None and (
        summary.last_successful_time is None
        or summary.last_failed_time > summary.last_successful_time
    )
    if failing:
        degraded = _condition(
            previous, DEGRADED, true, "BackupFailed",
            f"{summary.last_failed_backup}: {summary.last_failed_reason or 'Failed'}",
            generation, now,
        )  # fmt: skip
    else:
        degraded = _condition(previous, DEGRADED, false, "AsExpected", "", generation, now)
    if suspend:
        ready = _condition(previous, READY, true, "Suspended", "no new backups", generation, now)
    else:
        ready = _condition(
            previous, READY, true, "Scheduled",
            f"next backup at {plan.next_time:%Y-%m-%dT%H:%M:%SZ}" if plan.next_time else "",
            generation, now,
        )  # fmt: skip
    suspended = _condition(
        previous, SUSPENDED, true if suspend else false,
        "Suspended" if suspend else "NotSuspended", "", generation, now,
    )  # fmt: skip
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "conditions": [ready, suspended, degraded],
            "last_schedule_time": plan.last_schedule_time,
            "next_schedule_time": plan.next_time,
            "active": summary.active,
            "last_successful_time": summary.last_successful_time,
            "last_successful_backup": summary.last_successful_backup,
            "last_failed_time": summary.last_failed_time,
            "last_failed_backup": summary.last_failed_backup,
            "last_failed_reason": summary.last_failed_reason,
            "last_drill_schedule_time": plan.last_drill_schedule_time,
            "last_drill": last_drill or previous.last_drill,
        }
    )


@dataclass(frozen=True)
class Note:
    warning: bool
    reason: str
    message: str


def notes(previous: EtcdBackupScheduleStatus, new: EtcdBackupScheduleStatus) -> list[Note]:
    """Events for what the status says changed: a backup newly failed, a drill's result."""
    out = []
    if new.last_failed_backup is not None and new.last_failed_backup != previous.last_failed_backup:
        out.append(
            Note(True, "BackupFailed", f"{new.last_failed_backup}: {new.last_failed_reason or ''}")
        )
    drill, before = new.last_drill, previous.last_drill
    if drill is not None and drill.result and (before is None or before.name != drill.name):
        out.append(
            Note(
                drill.result != "Passed",
                f"Drill{drill.result}",
                f"restore drill {drill.name} of {drill.backup}: {drill.result}",
            )
        )
    return out
