"""The ServiceMonitor for etcd's own metrics: it selects the headless Service the operator
builds for every cluster (the real builder, not a copy of its labels), on the port that
Service names `metrics`, in every namespace the install watches, and labels each member's
series with its cluster's `name`, as the operator's own series are labelled."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.api import parse_cluster
from etcd_operator.naming import METRICS_PORT
from etcd_operator.resources import client_service, peer_service
from harness import chart


def _cluster(name: str, namespace: str) -> Any:
    return parse_cluster(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": {"name": name, "namespace": namespace, "uid": "u", "generation": 1},
            "spec": {},
        }
    )


def _monitors(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    documents = chart.documents(chart.render(values))
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServiceMonitor"}


def _members_monitor(values: dict[str, Any]) -> dict[str, Any]:
    monitors = _monitors(values)
    return monitors[f"{chart.RELEASE}-members"]


def _selects(monitor: dict[str, Any], service: dict[str, Any]) -> bool:
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    return bool(wanted <= service["metadata"]["labels"].items())


ENABLED = {"members": {"serviceMonitor": {"enabled": True}}}


def test_no_members_monitor_unless_asked() -> None:
    assert f"{chart.RELEASE}-members" not in _monitors({})


@pytest.mark.parametrize(("name", "namespace"), [("db", "team-a"), ("etcd-operator", "x")])
def test_it_selects_each_cluster_s_headless_service_on_its_metrics_port(
    name: str, namespace: str
) -> None:
    monitor = _members_monitor(ENABLED)
    peer = peer_service(_cluster(name, namespace)).to_dict()
    client = client_service(_cluster(name, namespace)).to_dict()
    assert _selects(monitor, peer)
    assert not _selects(monitor, client)  # each member scraped once, ready or not
    (endpoint,) = monitor["spec"]["endpoints"]
    ports = {p["name"]: p["port"] for p in peer["spec"]["ports"]}
    assert ports[endpoint["port"]] == METRICS_PORT
    assert endpoint["scheme"] == "http"  # 2381 stays plaintext under TLS
    # The cluster's name reaches the series as `name`, from the Service's instance label.
    (relabel,) = endpoint["relabelings"]
    assert relabel["targetLabel"] == "name"
    (source,) = relabel["sourceLabels"]
    label = source.removeprefix("__meta_kubernetes_service_label_")
    by_meta_name = {
        k.replace(".", "_").replace("/", "_").replace("-", "_"): v
        for k, v in peer["metadata"]["labels"].items()
    }
    assert by_meta_name[label] == name


def test_it_does_not_select_the_operator_s_own_metrics_service() -> None:
    documents = chart.documents(chart.render(ENABLED))
    (operator_service,) = [d for d in documents if d["kind"] == "Service"]
    assert not _selects(_members_monitor(ENABLED), operator_service)


def test_a_cluster_wide_install_watches_members_in_every_namespace() -> None:
    assert _members_monitor(ENABLED)["spec"]["namespaceSelector"] == {"any": True}


def test_a_namespaced_install_watches_members_only_in_its_namespaces() -> None:
    monitor = _members_monitor({**ENABLED, "watchNamespaces": ["team-a", "team-b"]})
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_interval_and_labels_come_from_values() -> None:
    values = {
        "members": {
            "serviceMonitor": {
                "enabled": True,
                "interval": "15s",
                "labels": {"release": "kube-prometheus"},
            }
        }
    }
    monitor = _members_monitor(values)
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["metadata"]["namespace"] == chart.NAMESPACE


def test_it_is_independent_of_the_operator_s_own_metrics() -> None:
    monitors = _monitors({**ENABLED, "metrics": {"enabled": False}})
    assert set(monitors) == {f"{chart.RELEASE}-members"}


def test_the_operator_s_monitor_keeps_the_cluster_s_namespace_label() -> None:
    """Its series carry the cluster's `namespace`; without honorLabels Prometheus would
    rename it `exported_namespace` and the alerts' joins by (namespace, name) would break."""
    monitor = _monitors({"metrics": {"serviceMonitor": {"enabled": True}}})[chart.RELEASE]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
