"""Restore drills and the ready timeout, decided (pure): check the throwaway cluster against
what the backup recorded, record the result, only then delete the cluster, then end with that
result; an ordinary restore never deletes anything."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from etcd_operator.api.restore import DrillResult, RestorePhase
from etcd_operator.restore.decide import (
    ClusterSeen,
    DeleteCluster,
    DrillExpected,
    DrillSeen,
    Fail,
    RecordDrill,
    SnapshotFacts,
    Succeed,
    Wait,
    decide_restore,
)
from unit.support.restore import NEW_RESTORE

NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
FACTS = SnapshotFacts(revision=305, sha256="a" * 64, size=4096)
EXPECTED = DrillExpected(revision=305, keys=300, source_cluster="src")
READY = ClusterSeen("u-1", ready=True, summary="Running", created=NOW - timedelta(minutes=1))
STARTING = replace(READY, ready=False, summary="Creating")
CHECKING = replace(
    NEW_RESTORE,
    cluster_name="drill",
    source="EtcdBackup b",
    phase=RestorePhase.RESTORING,
    verified=FACTS,
    cluster_recorded=True,
    cluster=READY,
    served_revision=305,
    drill=DrillSeen(expected=EXPECTED, served_keys=300),
    now=NOW,
)
PASSED = (DrillResult.PASSED, "DrillPassed", "passed")
FAILED = (DrillResult.FAILED, "KeyCountMismatch", "299 keys, not 300")


def test_a_ready_drill_cluster_serving_the_backups_revision_and_keys_passes() -> None:
    d = decide_restore(CHECKING)
    assert d.step == RecordDrill(DrillResult.PASSED, 305, 300)
    assert d.phase is RestorePhase.RESTORING  # the cluster is deleted before the end
    assert "305" in d.message and "300 keys" in d.message


def test_a_drill_cluster_missing_keys_fails_and_says_how_many() -> None:
    d = decide_restore(replace(CHECKING, drill=DrillSeen(expected=EXPECTED, served_keys=299)))
    assert d.step == RecordDrill(DrillResult.FAILED, 305, 299)
    assert d.reason == "KeyCountMismatch"
    assert "299 keys" in d.message and "recorded 300" in d.message


def test_a_drill_cluster_behind_the_backups_revision_fails() -> None:
    d = decide_restore(replace(CHECKING, served_revision=304))
    assert d.step == RecordDrill(DrillResult.FAILED, 304) and d.reason == "RevisionBehind"


def test_without_a_recorded_key_count_only_the_revision_is_checked() -> None:
    drill = DrillSeen(expected=replace(EXPECTED, keys=None))
    d = decide_restore(replace(CHECKING, drill=drill))
    assert d.step == RecordDrill(DrillResult.PASSED, 305) and "revision checked only" in d.message


def test_keys_not_counted_yet_wait_and_keys_etcd_cannot_count_fail() -> None:
    uncounted = replace(CHECKING, drill=DrillSeen(expected=EXPECTED))
    assert decide_restore(uncounted).step == Wait()
    refused = replace(CHECKING, drill=DrillSeen(expected=EXPECTED, keys_error="compacted"))
    d = decide_restore(refused)
    assert d.step == RecordDrill(DrillResult.FAILED, 305) and "compacted" in d.message


def test_a_recorded_result_deletes_the_cluster_then_ends_with_that_result() -> None:
    for recorded, final in ((PASSED, Succeed()), (FAILED, Fail(snapshot=False))):
        o = replace(CHECKING, drill=DrillSeen(recorded=recorded, expected=EXPECTED))
        assert decide_restore(o).step == DeleteCluster()
        d = decide_restore(replace(o, cluster=replace(READY, deleting=True)))
        assert d.step == Wait() and d.reason == "DeletingDrillCluster"
        d = decide_restore(replace(o, cluster=None))
        assert d.step == final and d.reason == recorded[1] and d.message == recorded[2]


def test_a_recorded_result_never_deletes_a_cluster_this_restore_did_not_create() -> None:
    o = replace(CHECKING, drill=DrillSeen(recorded=PASSED), cluster=replace(READY, restored_by="x"))
    assert decide_restore(o).step == Succeed()


def test_an_ordinary_restore_not_ready_in_time_fails_and_leaves_the_cluster() -> None:
    o = replace(CHECKING, drill=None, cluster=STARTING, served_revision=None)
    assert decide_restore(o).step == Wait()
    late = replace(o, now=NOW + timedelta(minutes=10))
    d = decide_restore(late)
    assert d.step == Fail(snapshot=False) and d.reason == "ClusterNotReady"
    assert "left in place" in d.message
    # Ready but not answering counts as not ready.
    d = decide_restore(replace(late, cluster=READY))
    assert d.step == Fail(snapshot=False) and d.reason == "ClusterNotReady"
    longer = replace(late, ready_timeout=timedelta(hours=1))
    assert decide_restore(longer).step == Wait()


def test_a_drill_not_ready_in_time_records_the_failure_then_deletes() -> None:
    o = replace(CHECKING, cluster=STARTING, served_revision=None, now=NOW + timedelta(hours=1))
    d = decide_restore(o)
    assert d.step == RecordDrill(DrillResult.FAILED) and d.reason == "ClusterNotReady"


_recorded = st.none() | st.sampled_from([PASSED, FAILED])
_drills = st.none() | st.builds(
    DrillSeen,
    recorded=_recorded,
    expected=st.none() | st.just(EXPECTED) | st.just(replace(EXPECTED, keys=None)),
    served_keys=st.none() | st.integers(290, 310),
    keys_error=st.none() | st.just("compacted"),
)
_clusters = st.none() | st.builds(
    ClusterSeen,
    st.sampled_from([None, "u-1", "u-2"]),
    st.booleans(),
    st.just("s"),
    st.sampled_from([None, NOW - timedelta(minutes=1), NOW - timedelta(hours=1)]),
    st.booleans(),
)


@settings(max_examples=400)
@given(
    phase=st.sampled_from(list(RestorePhase)),
    drill=_drills,
    cluster=_clusters,
    verified=st.none() | st.just(FACTS),
    recorded_cluster=st.booleans(),
    served=st.none() | st.integers(300, 310),
)
def test_only_a_drill_deletes_and_only_its_own_cluster_after_recording_the_result(
    phase: RestorePhase,
    drill: DrillSeen | None,
    cluster: ClusterSeen | None,
    verified: SnapshotFacts | None,
    recorded_cluster: bool,
    served: int | None,
) -> None:
    o = replace(
        CHECKING,
        phase=phase,
        drill=drill,
        cluster=cluster,
        verified=verified,
        cluster_recorded=recorded_cluster,
        served_revision=served,
    )
    d = decide_restore(o)
    if isinstance(d.step, DeleteCluster):
        assert drill is not None and drill.recorded is not None  # the result is never lost
        assert cluster is not None and cluster.restored_by == "u-1" and not cluster.deleting
    if isinstance(d.step, RecordDrill):
        assert drill is not None and drill.recorded is None  # recorded once, never rewritten
        assert cluster is not None and cluster.restored_by == "u-1"
    if drill is not None and cluster is not None and cluster.restored_by == "u-1":
        # A drill never ends while its own cluster exists: every failure is recorded first.
        assert not isinstance(d.step, Fail | Succeed) or phase is not RestorePhase.RESTORING
    if isinstance(d.step, Succeed) and drill is not None:
        assert drill.recorded == PASSED
    ends = d.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED)
    if (
        drill is not None
        and drill.recorded is not None
        and phase is RestorePhase.RESTORING
        and ends
    ):
        # The end comes only once the throwaway cluster is gone (or is not ours).
        assert cluster is None or cluster.restored_by != "u-1"


def test_a_drill_whose_status_lost_its_expectations_fails_and_still_deletes() -> None:
    lost = replace(CHECKING, verified=None, drill=DrillSeen(served_keys=300))
    d = decide_restore(lost)
    assert d.step == RecordDrill(DrillResult.FAILED, 305) and d.reason == "VerificationLost"


@given(
    ready=st.booleans(),
    created=st.sampled_from([None, NOW - timedelta(minutes=1), NOW - timedelta(hours=1)]),
    verified=st.none() | st.just(FACTS),
    served=st.none() | st.integers(300, 310),
    expected=st.none() | st.just(EXPECTED) | st.just(replace(EXPECTED, keys=None)),
    served_keys=st.none() | st.integers(290, 310),
    keys_error=st.none() | st.just("compacted"),
)
def test_a_drill_with_its_cluster_up_never_ends_before_recording_and_deleting(
    ready: bool,
    created: datetime | None,
    verified: SnapshotFacts | None,
    served: int | None,
    expected: DrillExpected | None,
    served_keys: int | None,
    keys_error: str | None,
) -> None:
    o = replace(
        CHECKING,
        cluster=replace(READY, ready=ready, created=created),
        verified=verified,
        served_revision=served,
        drill=DrillSeen(expected=expected, served_keys=served_keys, keys_error=keys_error),
    )
    d = decide_restore(o)
    assert d.phase is RestorePhase.RESTORING
    assert isinstance(d.step, RecordDrill | Wait), d
