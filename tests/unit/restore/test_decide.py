"""The EtcdRestore decision: verify, record, clean up, create, follow, check; never two clusters,
never into someone else's."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.api.restore import RestorePhase
from etcd_operator.restore.decide import (
    ClusterSeen,
    CreateCluster,
    CreateVerifyPod,
    DeleteVerifyPod,
    Done,
    Fail,
    RecordVerified,
    RestoreObserved,
    SnapshotFacts,
    Succeed,
    VerifyPod,
    Wait,
    decide_restore,
)
from unit.support.restore import NEW_RESTORE

FACTS = SnapshotFacts(revision=10_001, sha256="a" * 64, size=4096)
NEW = NEW_RESTORE
OURS = ClusterSeen(restored_by="u-1", ready=True, summary="Running")


def test_a_new_restore_verifies_first() -> None:
    d = decide_restore(NEW)
    assert d.step == CreateVerifyPod() and d.phase is RestorePhase.VERIFYING


def test_a_missing_source_fails_before_anything_is_created() -> None:
    d = decide_restore(replace(NEW, source_exists=False))
    assert d.step == Fail(snapshot=True) and d.reason == "SnapshotNotFound"


def test_a_refused_snapshot_fails_with_the_checks_reason() -> None:
    pod = VerifyPod("Failed", failure=("SnapshotTruncated", "no trailer"))
    d = decide_restore(replace(NEW, pod=pod))
    assert d.step == Fail(snapshot=True)
    assert d.reason == "SnapshotTruncated" and "nothing was created" in d.message


def test_a_verified_snapshot_is_recorded_then_the_pod_removed_then_the_cluster_created() -> None:
    d = decide_restore(replace(NEW, pod=VerifyPod("Succeeded", facts=FACTS)))
    assert d.step == RecordVerified(FACTS)
    recorded = replace(NEW, verified=FACTS, pod=VerifyPod("Succeeded", facts=FACTS))
    assert decide_restore(recorded).step == DeleteVerifyPod()
    d = decide_restore(replace(recorded, pod=None))
    assert d.step == CreateCluster() and d.phase is RestorePhase.RESTORING


def test_the_cluster_is_followed_until_it_serves_the_snapshots_revision() -> None:
    o = replace(NEW, verified=FACTS, cluster=replace(OURS, ready=False, summary="Creating"))
    assert decide_restore(o).step == Wait()
    o = replace(o, cluster=OURS, served_revision=None)
    assert decide_restore(o).step == Wait()
    d = decide_restore(replace(o, served_revision=FACTS.revision))
    assert d.step == Succeed() and d.phase is RestorePhase.SUCCEEDED
    d = decide_restore(replace(o, served_revision=FACTS.revision - 1))
    assert d.step == Fail(snapshot=False) and d.reason == "RevisionBehind"


@pytest.mark.parametrize("verified", [None, FACTS])
def test_an_existing_cluster_not_created_by_this_restore_is_refused(
    verified: SnapshotFacts | None,
) -> None:
    other = ClusterSeen(restored_by=None, ready=True, summary="Running")
    d = decide_restore(replace(NEW, verified=verified, cluster=other))
    assert d.step == Fail(snapshot=False) and d.reason == "ClusterExists"


def test_a_created_cluster_that_vanished_is_not_created_again() -> None:
    d = decide_restore(replace(NEW, verified=FACTS, cluster_recorded=True))
    assert d.step == Fail(snapshot=False) and d.reason == "ClusterDeleted"


@given(
    phase=st.sampled_from(list(RestorePhase)),
    verified=st.none() | st.just(FACTS),
    recorded=st.booleans(),
    source=st.booleans(),
    pod=st.none()
    | st.builds(
        VerifyPod,
        st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"]),
        st.booleans(),
        st.none() | st.just(FACTS),
        st.none() | st.just(("X", "y")),
    ),
    cluster=st.none()
    | st.builds(ClusterSeen, st.sampled_from([None, "u-1", "u-2"]), st.booleans(), st.just("s")),
    served=st.none() | st.integers(0, 20_000),
)
def test_the_cluster_is_created_only_when_none_exists_from_a_verified_snapshot(
    phase: RestorePhase,
    verified: SnapshotFacts | None,
    recorded: bool,
    source: bool,
    pod: VerifyPod | None,
    cluster: ClusterSeen | None,
    served: int | None,
) -> None:
    o = RestoreObserved("u-1", "c", "s", phase, verified, recorded, source, pod, cluster, served)
    d = decide_restore(o)
    if phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED):
        assert d.step == Done()
    if isinstance(d.step, CreateCluster):
        assert cluster is None and verified is not None and pod is None and not recorded
    if isinstance(d.step, CreateVerifyPod):
        assert cluster is None and verified is None and source
    if isinstance(d.step, Succeed):
        assert cluster is not None and cluster.restored_by == "u-1" and cluster.ready
        assert served is not None and verified is not None and served >= verified.revision
    if cluster is not None and cluster.restored_by != "u-1":
        assert isinstance(d.step, Fail | Done)
