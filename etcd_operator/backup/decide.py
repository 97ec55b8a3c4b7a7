"""What to do next for one EtcdBackup, and what its status says (pure).

The shell observes the backup, its Job and the Job's pods (each pod one attempt, its
result in its termination message) and whether the cluster can be backed up now; `decide`
returns one of a closed set of decisions; `next_status` turns it into the status to write,
and `events` into what to tell the user (only what changed since the last status).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from etcd_operator.api.backup import BackupPhase, EtcdBackupStatus
from etcd_operator.api.common import Condition, ConditionStatus, next_condition
from etcd_operator.backup.contract import Result

COMPLETE = "Complete"
FAILED = "Failed"


@dataclass(frozen=True)
class Attempt:
    """One pod of the Job."""

    pod: str
    finished: bool
    result: Result | None  # from the termination message (None: killed, evicted, no message)
    exit_code: int | None = None
    message: str = ""  # the terminated state's message when it holds no result (log tail)


@dataclass(frozen=True)
class JobState:
    active: int = 0
    failed: int = 0
    succeeded: int = 0
    complete: bool = False
    failed_reason: str | None = None  # the Job's Failed condition: BackoffLimitExceeded...
    failed_message: str = ""


@dataclass(frozen=True)
class BackupObserved:
    status: EtcdBackupStatus
    generation: int | None
    job_name: str
    job: JobState | None  # None: no Job exists
    attempts: tuple[Attempt, ...] = ()  # oldest first
    blocked: tuple[str, str] | None = None  # (reason, message): the Job cannot be built now


class Kind(StrEnum):
    DONE = "Done"  # final status recorded: nothing to do
    CREATE_JOB = "CreateJob"
    WAIT = "Wait"  # Pending: the Job cannot be created yet (blocked)
    RUNNING = "Running"  # the Job works (or waits for its next attempt)
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class Decision:
    kind: Kind
    reason: str
    message: str
    result: Result | None = None  # SUCCEEDED: what the attempt stored
    failed_attempts: int = 0
    active: bool = False  # RUNNING: a pod runs now (else waiting for the next one)


def _failure(attempt: Attempt) -> tuple[str, str]:
    if attempt.result is not None:
        return attempt.result.reason or "AttemptFailed", attempt.result.message
    code = "" if attempt.exit_code is None else f" (exit code {attempt.exit_code})"
    detail = attempt.message.strip().splitlines()[-1:] if attempt.message else []
    return "AttemptFailed", f"pod {attempt.pod} failed{code}" + (f": {detail[0]}" if detail else "")


def decide(seen: BackupObserved) -> Decision:
    phase = seen.status.phase
    if phase in (BackupPhase.SUCCEEDED, BackupPhase.FAILED):
        return Decision(Kind.DONE, phase.value, "final")
    succeeded = [
        a for a in seen.attempts if a.result is not None and a.result.outcome == "Succeeded"
    ]
    failures = [a for a in seen.attempts if a.finished and a not in succeeded]
    if succeeded:
        result = succeeded[-1].result
        assert result is not None
        return Decision(
            Kind.SUCCEEDED, result.reason or "SnapshotStored", result.message, result, len(failures)
        )
    if seen.job is None:
        if seen.blocked is not None:
            return Decision(Kind.WAIT, *seen.blocked)
        return Decision(Kind.CREATE_JOB, "JobCreated", f"Job {seen.job_name} takes the snapshot")
    last = _failure(failures[-1]) if failures else None
    if seen.job.complete:
        # Complete without a successful attempt's result: its pod and message are gone.
        return Decision(
            Kind.FAILED, "ResultMissing", f"Job {seen.job_name} completed but left no result"
        )
    if seen.job.failed_reason is not None:
        reason, message = last or (seen.job.failed_reason, seen.job.failed_message)
        attempts = max(len(failures), seen.job.failed)
        return Decision(
            Kind.FAILED,
            reason,
            f"{message} (Job {seen.job_name}: {seen.job.failed_reason}, "
            f"{attempts} failed attempt{'s' if attempts != 1 else ''})",
            None,
            attempts,
        )
    if last is not None:
        reason, message = last
        return Decision(
            Kind.RUNNING, reason, f"attempt {len(failures)} failed, retrying: {message}",
            None, len(failures), seen.job.active > 0,
        )  # fmt: skip
    return Decision(
        Kind.RUNNING, "SnapshotInProgress", f"Job {seen.job_name} takes the snapshot",
        None, 0, seen.job.active > 0,
    )  # fmt: skip


def _condition(
    previous: EtcdBackupStatus,
    kind: str,
    *,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> Condition:
    return next_condition(previous.conditions or [], kind, status, reason, message, generation, now)


def _time(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00"))


def next_status(seen: BackupObserved, decision: Decision, now: datetime) -> EtcdBackupStatus:
    """The status after this decision (DONE: unchanged)."""
    previous = seen.status
    if decision.kind is Kind.DONE:
        return previous
    phase = {
        Kind.CREATE_JOB: BackupPhase.PENDING,
        Kind.WAIT: BackupPhase.PENDING,
        Kind.RUNNING: BackupPhase.RUNNING if decision.active else BackupPhase.PENDING,
        Kind.SUCCEEDED: BackupPhase.SUCCEEDED,
        Kind.FAILED: BackupPhase.FAILED,
    }[decision.kind]
    if decision.kind is Kind.RUNNING and previous.phase == BackupPhase.RUNNING:
        phase = BackupPhase.RUNNING  # between two attempts the backup is still under way
    succeeded = decision.kind is Kind.SUCCEEDED
    failed = decision.kind is Kind.FAILED
    # Failed carries the last attempt's failure while the Job retries (status False), so
    # `kubectl describe` shows why an attempt failed before the backup as a whole does.
    failure = failed or (decision.failed_attempts > 0 and not succeeded)
    conditions = [
        _condition(
            previous,
            COMPLETE,
            status=ConditionStatus.TRUE if succeeded else ConditionStatus.FALSE,
            reason=decision.reason,
            message=decision.message,
            generation=seen.generation,
            now=now,
        ),
        _condition(
            previous,
            FAILED,
            status=ConditionStatus.TRUE if failed else ConditionStatus.FALSE,
            reason=decision.reason if failure else "NoFailure",
            message=decision.message if failure else "",
            generation=seen.generation,
            now=now,
        ),
    ]
    update: dict[str, object] = {
        "observed_generation": seen.generation,
        "phase": phase,
        "conditions": conditions,
        "job_name": seen.job_name if decision.kind is not Kind.WAIT else previous.job_name,
        "failed_attempts": decision.failed_attempts or previous.failed_attempts,
    }
    if decision.kind is Kind.RUNNING and previous.start_time is None:
        update["start_time"] = now
    if decision.kind is Kind.FAILED:
        update["completion_time"] = now
    result = decision.result
    if result is not None:
        update.update(
            location=result.location,
            size=result.size,
            sha256=result.sha256,
            revision=result.revision,
            keys=result.keys,
            cluster_id=result.cluster_id,
            etcd_version=result.etcd_version,
            member=result.member,
            start_time=_time(result.start_time) or previous.start_time,
            completion_time=_time(result.completion_time) or now,
        )
    return previous.model_copy(update=update)


@dataclass(frozen=True)
class Note:
    warning: bool
    reason: str
    message: str


def events(previous: EtcdBackupStatus, decision: Decision) -> list[Note]:
    """What changed since the previous status, for Events: a start, each failed attempt,
    the end."""
    notes = []
    if decision.kind is Kind.CREATE_JOB:
        notes.append(Note(False, "JobCreated", decision.message))
    if decision.kind is Kind.RUNNING and decision.active and previous.phase != BackupPhase.RUNNING:
        notes.append(Note(False, "Started", "the snapshot is being taken"))
    if decision.failed_attempts > (previous.failed_attempts or 0) and decision.kind is Kind.RUNNING:
        notes.append(Note(True, decision.reason, decision.message))
    if decision.kind is Kind.SUCCEEDED:
        notes.append(Note(False, "Succeeded", f"{decision.result and decision.result.location}: "
                          f"{decision.message}"))  # fmt: skip
    if decision.kind is Kind.FAILED:
        notes.append(Note(True, decision.reason, decision.message))
    if decision.kind is Kind.WAIT and (
        previous.conditions is None or all(c.reason != decision.reason for c in previous.conditions)
    ):
        notes.append(Note(True, decision.reason, decision.message))
    return notes
