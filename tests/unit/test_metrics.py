"""The exported series, parsed with prometheus_client's own text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from etcd_operator import metrics


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _figures(leader: int, ready: int = 3) -> metrics.ClusterFigures:
    return metrics.ClusterFigures(
        desired=3,
        ready=ready,
        voting=3,
        learners=0,
        leader_id=leader,
        db_size=2048,
        db_in_use=1024,
        quota=metrics.DEFAULT_QUOTA_BYTES,
    )


def test_a_round_exports_the_cluster_series_and_a_deleted_cluster_none() -> None:
    c = (("name", "m1"), ("namespace", "ns"))
    metrics.record_round("ns", "m1", _figures(1), step="InSync", seconds=0.2, error=False, now=5)
    metrics.record_round("ns", "m1", _figures(2), step="InSync", seconds=0.2, error=False, now=6)
    metrics.record_round("ns", "m1", _figures(2), step="CreatePod", seconds=1, error=True, now=7)
    metrics.set_last_backup("ns", "m1", 1234.0)
    metrics.set_last_backup("ns", "m1", 1000.0)  # an older backup, handled later
    got = _samples()
    assert got[("etcd_operator_cluster_members_desired", c)] == 3
    assert got[("etcd_operator_cluster_members_ready", c)] == 3
    assert got[("etcd_operator_cluster_members_voting", c)] == 3
    assert got[("etcd_operator_cluster_members_learner", c)] == 0
    assert got[("etcd_operator_cluster_leader_changes_total", c)] == 1
    assert got[("etcd_operator_cluster_db_size_bytes", c)] == 2048
    assert got[("etcd_operator_cluster_db_size_in_use_bytes", c)] == 1024
    assert got[("etcd_operator_cluster_db_quota_bytes", c)] == 2 * 1024**3
    assert got[("etcd_operator_cluster_last_backup_timestamp_seconds", c)] == 1234
    # The failed round does not move the last success.
    assert got[("etcd_operator_cluster_last_successful_round_timestamp_seconds", c)] == 6
    assert got[("etcd_operator_reconcile_rounds_total", (*c, ("step", "InSync")))] == 2
    assert got[("etcd_operator_reconcile_errors_total", (*c, ("step", "CreatePod")))] == 1
    assert got[("etcd_operator_reconcile_errors_total", (*c, ("step", "InSync")))] == 0
    assert got[("etcd_operator_reconcile_duration_seconds_count", (("step", "InSync"),))] >= 2
    metrics.forget_cluster("ns", "m1")
    assert not any(dict(labels).get("name") == "m1" for _, labels in _samples())
    # A cluster made again under the name starts from its own backups.
    metrics.set_last_backup("ns", "m1", 10.0)
    assert _samples()[("etcd_operator_cluster_last_backup_timestamp_seconds", c)] == 10
    metrics.forget_cluster("ns", "m1")


def test_drill_series_follow_the_latest_drill_whatever_order_they_are_reported_in() -> None:
    c = (("name", "drilled"), ("namespace", "ns"))
    result = ("etcd_operator_restore_drill_last_result", c)
    success = ("etcd_operator_restore_drill_last_success_timestamp_seconds", c)
    metrics.record_drill("ns", "drilled", passed=False, at=100.0)
    assert _samples()[result] == 0
    assert _samples()[success] == 0  # none passed yet: "no successful drill" can fire
    metrics.record_drill("ns", "drilled", passed=True, at=300.0)
    assert _samples()[result] == 1 and _samples()[success] == 300
    # An older drill reported later (a restarted operator) changes neither.
    metrics.record_drill("ns", "drilled", passed=False, at=200.0)
    metrics.record_drill("ns", "drilled", passed=True, at=250.0)
    assert _samples()[result] == 1 and _samples()[success] == 300
    metrics.record_drill("ns", "drilled", passed=False, at=400.0)
    assert _samples()[result] == 0 and _samples()[success] == 300
    metrics.forget_cluster("ns", "drilled")  # a fact about its backups: kept
    assert _samples()[result] == 0
