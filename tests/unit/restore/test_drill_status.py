"""What a drill writes to status: when it began, what it expects (recorded with the snapshot,
from the backup), its result with DrillPassed, and any failure before a check as Failed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from etcd_operator.api.restore import DrillResult, EtcdRestoreStatus, RestorePhase
from etcd_operator.restore.decide import (
    ClusterSeen,
    DrillExpected,
    DrillSeen,
    RestoreObserved,
    SnapshotFacts,
    VerifyPod,
    decide_restore,
)
from etcd_operator.restore.status import next_restore_status
from unit.support.restore import NEW_RESTORE

T0 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
FACTS = SnapshotFacts(revision=310, sha256="b" * 64, size=8192)
PROMISED = DrillExpected(revision=305, keys=300, source_cluster="src")
NEW = replace(
    NEW_RESTORE, cluster_name="drill", source="EtcdBackup b", drill=DrillSeen(promised=PROMISED)
)


def _step(status: EtcdRestoreStatus, o: RestoreObserved, now: datetime) -> EtcdRestoreStatus:
    return next_restore_status(status, o, decide_restore(o), now=now, generation=1)


def _condition(status: EtcdRestoreStatus, kind: str) -> tuple[str, str] | None:
    found = next((c for c in status.conditions if c.type == kind), None)
    return None if found is None else (found.status.value, found.reason)


def test_a_drill_records_its_start_then_the_backups_promise_with_the_snapshot() -> None:
    status = _step(EtcdRestoreStatus(), NEW, T0)
    assert status.drill is not None and status.drill.start_time == T0
    assert status.drill.result is None
    o = replace(NEW, pod=VerifyPod("Succeeded", facts=FACTS))
    status = _step(status, o, T0 + timedelta(seconds=5))
    assert status.revision == 310  # the snapshot's own, as for any restore
    assert status.drill is not None and status.drill.start_time == T0
    assert (status.drill.expected_revision, status.drill.expected_keys) == (305, 300)
    assert status.drill.source_cluster == "src"


def test_a_location_source_expects_the_snapshots_revision_and_no_key_count() -> None:
    o = replace(NEW, pod=VerifyPod("Succeeded", facts=FACTS), drill=DrillSeen())
    status = _step(EtcdRestoreStatus(), o, T0)
    assert status.drill is not None
    assert (status.drill.expected_revision, status.drill.expected_keys) == (310, None)
    assert status.drill.source_cluster is None


def test_a_refused_snapshot_is_a_failed_drill_and_nothing_to_delete() -> None:
    o = replace(
        NEW,
        pod=VerifyPod("Failed", failure=("SHA256Mismatch", "not the recorded one")),
        drill=DrillSeen(promised=PROMISED, source_cluster="src"),
    )
    status = _step(EtcdRestoreStatus(), o, T0)
    assert status.drill is not None and status.drill.source_cluster == "src"  # for its metric
    assert status.phase is RestorePhase.FAILED
    assert status.drill is not None and status.drill.result is DrillResult.FAILED
    assert status.drill.reason == "SHA256Mismatch" and status.drill.completion_time == T0
    assert _condition(status, "DrillPassed") == ("False", "SHA256Mismatch")
    assert _condition(status, "Verified") == ("False", "SHA256Mismatch")


def test_a_check_records_the_result_with_what_was_served_before_the_end() -> None:
    checking = replace(
        NEW,
        phase=RestorePhase.RESTORING,
        verified=FACTS,
        cluster_recorded=True,
        cluster=ClusterSeen("u-1", ready=True, summary="Running"),
        served_revision=310,
        drill=DrillSeen(expected=PROMISED, served_keys=300),
    )
    status = _step(EtcdRestoreStatus(phase=RestorePhase.RESTORING), checking, T0)
    assert status.phase is RestorePhase.RESTORING  # ends once the cluster is deleted
    drill = status.drill
    assert drill is not None and drill.result is DrillResult.PASSED
    assert (drill.served_revision, drill.served_keys) == (310, 300)
    assert _condition(status, "DrillPassed") == ("True", "DrillPassed")
    # The end: the result stays as it was recorded.
    recorded = (DrillResult.PASSED, "DrillPassed", drill.message or "")
    gone = replace(checking, cluster=None, drill=DrillSeen(recorded=recorded, expected=PROMISED))
    final = _step(status, gone, T0 + timedelta(seconds=9))
    assert final.phase is RestorePhase.SUCCEEDED and final.drill == drill
    assert _condition(final, "Restored") == ("True", "DrillPassed")
