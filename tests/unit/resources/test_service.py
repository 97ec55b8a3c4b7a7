"""Peer (headless) and client services."""

from __future__ import annotations

from etcd_operator.resources import client_service, peer_service
from unit.support.clusters import make_cluster

SELECTOR = {
    "app.kubernetes.io/name": "etcd",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/component": "member",
}


def test_peer_service_is_headless_and_publishes_unready_members() -> None:
    service = peer_service(make_cluster()).to_dict()
    assert service["metadata"]["name"] == "demo"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == SELECTOR
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "peer": 2380,
        "client": 2379,
        "metrics": 2381,
    }
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "peer"
    assert service["metadata"]["ownerReferences"][0]["controller"] is True


def test_client_service_serves_ready_members_on_2379() -> None:
    service = client_service(make_cluster()).to_dict()
    assert service["metadata"]["name"] == "demo-client"
    assert service["spec"]["type"] == "ClusterIP"
    assert "publishNotReadyAddresses" not in service["spec"]
    assert service["spec"]["selector"] == SELECTOR
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("client", 2379, 2379)
    ]


def test_members_metrics_are_named_on_the_headless_service_only() -> None:
    """A ServiceMonitor selects the peer Service's `metrics` port: every member, ready or not
    (publishNotReadyAddresses), each scraped once."""
    peer = peer_service(make_cluster()).to_dict()["spec"]
    client = client_service(make_cluster()).to_dict()["spec"]
    [metrics] = [p for p in peer["ports"] if p["name"] == "metrics"]
    assert (metrics["port"], metrics["targetPort"], metrics["protocol"]) == (2381, 2381, "TCP")
    assert "metrics" not in {p["name"] for p in client["ports"]}
