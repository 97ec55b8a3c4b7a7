"""What happens next for a backup, from its Job and the Job's pods (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from etcd_operator.api.backup import BackupPhase, EtcdBackupStatus
from etcd_operator.backup.contract import Result
from etcd_operator.backup.decide import (
    Attempt,
    BackupObserved,
    JobState,
    Kind,
    decide,
    events,
    next_status,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OK = Result(
    "Succeeded",
    "SnapshotStored",
    "stored",
    location="s3://b/k.db",
    size=10,
    sha256="a" * 64,
    revision=7,
    cluster_id="c1",
    etcd_version="3.6.7",
    member="demo-1",
    start_time="2026-01-01T00:00:00Z",
    completion_time="2026-01-01T00:00:05Z",
)
DENIED = Result("Failed", "InvalidAccessKeyId", "PutObject: InvalidAccessKeyId")
BROKEN = Result("Failed", "EtcdUnavailable", "stream broke")


def _seen(
    job: JobState | None = None, *attempts: Attempt, status: EtcdBackupStatus | None = None,
    blocked: tuple[str, str] | None = None,
) -> BackupObserved:  # fmt: skip
    return BackupObserved(
        status=status or EtcdBackupStatus(),
        generation=1,
        job_name="b-backup",
        job=job,
        attempts=attempts,
        blocked=blocked,
    )


def test_a_new_backup_creates_its_job_once() -> None:
    assert decide(_seen()).kind is Kind.CREATE_JOB
    assert decide(_seen(JobState(active=1))).kind is Kind.RUNNING


def test_a_blocked_backup_waits_pending_with_the_reason() -> None:
    seen = _seen(blocked=("ClusterNotFound", "EtcdCluster x does not exist"))
    decision = decide(seen)
    assert (decision.kind, decision.reason) == (Kind.WAIT, "ClusterNotFound")
    status = next_status(seen, decision, NOW)
    assert status.phase is BackupPhase.PENDING
    assert events(EtcdBackupStatus(), decision)[0].reason == "ClusterNotFound"
    assert events(status, decision) == []  # said once


def test_a_successful_attempt_fills_every_status_field() -> None:
    seen = _seen(JobState(succeeded=1, complete=True), Attempt("p1", True, OK, 0))
    decision = decide(seen)
    assert decision.kind is Kind.SUCCEEDED
    status = next_status(seen, decision, NOW)
    assert status.phase is BackupPhase.SUCCEEDED
    assert (status.location, status.size, status.sha256, status.revision) == (
        "s3://b/k.db", 10, "a" * 64, 7,
    )  # fmt: skip
    assert (status.cluster_id, status.etcd_version, status.member) == ("c1", "3.6.7", "demo-1")
    assert status.start_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert status.completion_time == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    complete = {c.type: c for c in status.conditions or []}
    assert complete["Complete"].status == "True" and complete["Failed"].status == "False"
    assert decide(_seen(status=status)).kind is Kind.DONE


def test_a_failed_attempt_is_reported_while_the_job_retries() -> None:
    seen = _seen(
        JobState(active=1, failed=1), Attempt("p1", True, BROKEN, 1), Attempt("p2", False, None)
    )
    decision = decide(seen)
    assert (decision.kind, decision.reason, decision.failed_attempts) == (
        Kind.RUNNING, "EtcdUnavailable", 1,
    )  # fmt: skip
    status = next_status(seen, decision, NOW)
    assert status.phase is BackupPhase.RUNNING
    failed = next(c for c in status.conditions or [] if c.type == "Failed")
    assert (failed.status, failed.reason) == ("False", "EtcdUnavailable")
    notes = events(EtcdBackupStatus(phase=BackupPhase.RUNNING), decision)
    assert [(n.warning, n.reason) for n in notes] == [(True, "EtcdUnavailable")]
    assert events(status, decision) == []  # the same failure is not told twice


def test_a_failed_job_fails_the_backup_with_the_attempts_reason_not_the_jobs() -> None:
    seen = _seen(
        JobState(failed=1, failed_reason="PodFailurePolicy"), Attempt("p1", True, DENIED, 3)
    )
    decision = decide(seen)
    assert (decision.kind, decision.reason) == (Kind.FAILED, "InvalidAccessKeyId")
    status = next_status(seen, decision, NOW)
    assert status.phase is BackupPhase.FAILED and status.location is None
    failed = next(c for c in status.conditions or [] if c.type == "Failed")
    assert (failed.status, failed.reason) == ("True", "InvalidAccessKeyId")
    assert "PodFailurePolicy" in failed.message
    assert [n.reason for n in events(EtcdBackupStatus(), decision)] == ["InvalidAccessKeyId"]


def test_an_attempt_without_a_result_fails_with_its_exit_code_and_log_tail() -> None:
    killed = Attempt("p1", True, None, 137, "backup: streaming\nKilled")
    seen = _seen(JobState(failed=1, failed_reason="BackoffLimitExceeded"), killed)
    decision = decide(seen)
    assert decision.kind is Kind.FAILED and decision.reason == "AttemptFailed"
    assert "exit code 137" in decision.message and "Killed" in decision.message


def test_a_complete_job_without_a_result_is_not_taken_for_a_success() -> None:
    decision = decide(_seen(JobState(succeeded=1, complete=True)))
    assert (decision.kind, decision.reason) == (Kind.FAILED, "ResultMissing")


def test_every_decision_kind_is_reachable() -> None:
    final = EtcdBackupStatus(phase=BackupPhase.FAILED)
    seen = {
        decide(s).kind
        for s in (
            _seen(),
            _seen(blocked=("X", "y")),
            _seen(JobState(active=1)),
            _seen(JobState(complete=True), Attempt("p", True, OK, 0)),
            _seen(JobState(failed_reason="BackoffLimitExceeded")),
            _seen(status=final),
        )
    }
    assert seen == set(Kind)
