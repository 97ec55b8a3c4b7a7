"""The chart's alert rules and Grafana dashboard: every expression is valid PromQL (parsed by
promql-parser, a PromQL parser used by Prometheus-compatible databases; building promtool
would mean building all of Prometheus) and names only series that exist: the operator's
own and etcd's."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest

from harness import chart

# The operator's series (etcd_operator.metrics; counters carry prometheus-client's _total).
OPERATOR_SERIES = {
    "etcd_operator_cluster_members_desired",
    "etcd_operator_cluster_members_ready",
    "etcd_operator_cluster_members_voting",
    "etcd_operator_cluster_members_learner",
    "etcd_operator_cluster_leader_changes_total",
    "etcd_operator_cluster_db_size_bytes",
    "etcd_operator_cluster_db_size_in_use_bytes",
    "etcd_operator_cluster_db_quota_bytes",
    "etcd_operator_cluster_last_backup_timestamp_seconds",
    "etcd_operator_cluster_last_successful_round_timestamp_seconds",
    "etcd_operator_restore_drill_last_result",
    "etcd_operator_restore_drill_last_success_timestamp_seconds",
    "etcd_operator_reconcile_rounds_total",
    "etcd_operator_reconcile_errors_total",
    "etcd_operator_reconcile_duration_seconds_bucket",
    "etcd_operator_leader",
    "etcd_operator_leadership_changes_total",
}
# etcd's own series (its /metrics), those the rules and dashboard use.
ETCD_SERIES = {
    "etcd_server_has_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_server_quota_backend_bytes",
    "etcd_disk_wal_fsync_duration_seconds_bucket",
}
REQUIRED_ALERTS = {
    "EtcdQuorumLost",
    "EtcdQuorumAtRisk",
    "EtcdMemberDown",
    "EtcdLeaderFlapping",
    "EtcdDatabaseNearQuota",
    "EtcdNoRecentBackup",
    "EtcdRestoreDrillFailing",
    "EtcdNoRecentRestoreDrill",
}
_DURATION = re.compile(r"^\d+[smhd]$")


def _series(expr: str) -> set[str]:
    """Parse `expr` (ValueError if it is not PromQL) and return the series it selects."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _rules(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = chart.render({"prometheusRule": {"enabled": True, **(values or {})}})
    (rule,) = [d for d in chart.documents(rendered) if d["kind"] == "PrometheusRule"]
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_parser_rejects_broken_promql() -> None:
    """So that the tests below can fail."""
    with pytest.raises(ValueError):
        _series("rate(etcd_server_has_leader[5m) > 0")
    assert _series("a / on (x) b") == {"a", "b"}


def test_alert_rules_are_valid_promql_over_known_series() -> None:
    rules = _rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        unknown = _series(rule["expr"]) - OPERATOR_SERIES - ETCD_SERIES
        assert not unknown, f"{rule['alert']} selects unknown series {unknown}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert _DURATION.match(rule["for"]), rule


def test_alert_thresholds_come_from_values() -> None:
    rules = {
        r["alert"]: r["expr"]
        for r in _rules(
            {
                "backupMaxAgeHours": 6,
                "dbQuotaFraction": 0.9,
                "leaderChangesPerHour": 5,
                "drillMaxAgeDays": 3,
            }
        )
    }
    assert "> 21600" in rules["EtcdNoRecentBackup"]
    assert "> 259200" in rules["EtcdNoRecentRestoreDrill"]
    assert "> 0.9" in rules["EtcdDatabaseNearQuota"]
    assert "> 5" in rules["EtcdLeaderFlapping"]


def test_alert_annotations_keep_prometheus_templates() -> None:
    """Helm must pass `{{ $labels... }}` through to Prometheus, not evaluate it."""
    summaries = {r["alert"]: r["annotations"]["summary"] for r in _rules()}
    assert "{{ $labels.namespace }}/{{ $labels.name }}" in summaries["EtcdQuorumLost"]
    assert "{{ $labels.name }}" in summaries["EtcdNoRecentBackup"]
    assert "{{ $labels.namespace }}/{{ $labels.name }}" in summaries["EtcdRestoreDrillFailing"]
    assert "{{ $labels.name }} passed in 8 days" in summaries["EtcdNoRecentRestoreDrill"]


def _dashboard() -> dict[str, Any]:
    rendered = chart.render({"grafanaDashboard": {"enabled": True}})
    (config_map,) = [d for d in chart.documents(rendered) if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard: dict[str, Any] = json.loads(config_map["data"]["etcd-operator.json"])
    return dashboard


def test_dashboard_queries_are_valid_promql_over_known_series() -> None:
    dashboard = _dashboard()
    selected: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            # Grafana substitutes its variables ($namespace) inside label matchers.
            series = _series(target["expr"])
            unknown = series - OPERATOR_SERIES - ETCD_SERIES
            assert not unknown, f"panel {panel['title']!r} selects unknown series {unknown}"
            selected |= series
    # The dashboard covers the members, etcd's leader and DB, fsync and backups.
    assert {
        "etcd_operator_cluster_members_ready",
        "etcd_server_has_leader",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_server_quota_backend_bytes",
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        "etcd_operator_cluster_last_backup_timestamp_seconds",
    } <= selected
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# Labels every target of a Prometheus Operator ServiceMonitor gets (from its Service and pod).
_TARGET_LABELS = {"namespace", "service", "pod", "container", "endpoint", "job", "instance"}
# Labels of the series themselves (histogram buckets carry `le`).
_OPERATOR_LABELS = {"namespace", "name", "step", "le"}
_ETCD_LABELS = {"le"}
_TEMPLATE_LABEL = re.compile(r"\$labels\.(\w+)")


def _labels_used(expr: str) -> set[str]:
    """Label names `expr` matches on, groups by or joins on."""
    used: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            used.update(m.name for m in node.matchers.matchers if m.name != "__name__")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            used.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            used.update(matching.labels if matching is not None else ())

    promql_parser.walk(promql_parser.parse(expr), visit)
    return used


def _produced_labels(series: set[str]) -> set[str]:
    """What the chart's ServiceMonitors give the series: the operator's own labels (kept by
    honorLabels) and, for etcd's series, the members' monitor's relabelings."""
    rendered = chart.render(
        {
            "metrics": {"serviceMonitor": {"enabled": True}},
            "members": {"serviceMonitor": {"enabled": True}},
        }
    )
    monitors = {
        d["metadata"]["name"]: d for d in chart.documents(rendered) if d["kind"] == "ServiceMonitor"
    }
    (members,) = monitors[f"{chart.RELEASE}-members"]["spec"]["endpoints"]
    relabelled = {r["targetLabel"] for r in members.get("relabelings", [])}
    produced = set(_TARGET_LABELS)
    if series & OPERATOR_SERIES:
        produced |= _OPERATOR_LABELS
    if series & ETCD_SERIES:
        produced |= _ETCD_LABELS | relabelled
    return produced


def test_alerts_use_only_labels_the_service_monitors_produce() -> None:
    for rule in _rules():
        produced = _produced_labels(_series(rule["expr"]))
        used = _labels_used(rule["expr"])
        for text in rule["annotations"].values():
            used |= set(_TEMPLATE_LABEL.findall(text))
        assert used <= produced, f"{rule['alert']} uses {used - produced}"


def test_dashboard_uses_only_labels_the_service_monitors_produce() -> None:
    for panel in _dashboard()["panels"]:
        for target in panel["targets"]:
            produced = _produced_labels(_series(target["expr"]))
            used = _labels_used(target["expr"])
            used |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
            assert used <= produced, f"panel {panel['title']!r} uses {used - produced}"


def test_dashboard_filters_etcd_s_own_series_by_namespace_and_cluster() -> None:
    """The `cluster` variable reaches etcd's panels through the members' `name` label."""

    def check(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name in ETCD_SERIES:
            matchers = {m.name: m.value for m in node.matchers.matchers}
            assert matchers.get("namespace") == "$namespace", node
            assert matchers.get("name") == "$cluster", node

    for panel in _dashboard()["panels"]:
        for target in panel["targets"]:
            promql_parser.walk(promql_parser.parse(target["expr"]), check)
