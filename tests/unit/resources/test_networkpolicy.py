"""The members' NetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.resources.networkpolicy import OperatorPod, network_policy, parse_labels
from unit.support.clusters import make_cluster

MEMBERS = {
    "app.kubernetes.io/name": "etcd",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/component": "member",
}
NAMESPACE_PODS = [{"podSelector": {}}]
BACKUP_PODS = {
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "etcd",
            "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/component": "backup",
        }
    }
}


def _rules(**policy: Any) -> dict[int, list[dict[str, Any]]]:
    """port -> peers, from the built policy."""
    body = network_policy(make_cluster(networkPolicy=policy), None).to_dict()
    rules: dict[int, list[dict[str, Any]]] = {}
    for rule in body["spec"]["ingress"]:
        (port,) = rule["ports"]
        assert port["protocol"] == "TCP"
        rules[port["port"]] = rule["from"]
    return rules


def test_the_policy_selects_the_members_for_ingress_and_is_owned_by_the_cluster() -> None:
    body = network_policy(make_cluster(), None).to_dict()
    assert body["metadata"]["name"] == "demo"
    assert body["metadata"]["namespace"] == "ns"
    assert body["metadata"]["ownerReferences"][0]["kind"] == "EtcdCluster"
    assert body["spec"]["podSelector"] == {"matchLabels": MEMBERS}
    assert body["spec"]["policyTypes"] == ["Ingress"]


def test_by_default_peers_only_from_members_and_client_and_metrics_from_the_namespace() -> None:
    assert _rules() == {
        2380: [{"podSelector": {"matchLabels": MEMBERS}}],
        2379: NAMESPACE_PODS,
        2381: NAMESPACE_PODS,
    }


def test_clients_from_and_metrics_from_replace_the_namespace_default() -> None:
    apps = {"namespaceSelector": {"matchLabels": {"team": "apps"}}}
    monitoring = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
    rules = _rules(clientsFrom=[apps], metricsFrom=[monitoring])
    assert rules[2379] == [apps, BACKUP_PODS]  # the cluster's backup Jobs stay clients
    assert rules[2381] == [monitoring]
    assert rules[2380] == [{"podSelector": {"matchLabels": MEMBERS}}]


def test_an_empty_list_admits_nobody_rather_than_everybody() -> None:
    rules = _rules(clientsFrom=[], metricsFrom=[])
    assert set(rules) == {2380, 2379}
    assert rules[2379] == [BACKUP_PODS]  # but the cluster's own backup Jobs


def test_the_operator_pod_is_added_to_the_client_port_only() -> None:
    operator = OperatorPod("ops", (("app", "op"),))
    cluster = make_cluster(networkPolicy={"clientsFrom": []})
    body = network_policy(cluster, operator).to_dict()
    (peer_rule, client_rule, metrics_rule) = body["spec"]["ingress"]
    assert client_rule["ports"][0]["port"] == 2379
    assert client_rule["from"] == [BACKUP_PODS, {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
        "podSelector": {"matchLabels": {"app": "op"}},
    }]  # fmt: skip
    assert metrics_rule["from"] == NAMESPACE_PODS
    assert peer_rule["ports"][0]["port"] == 2380


@pytest.mark.parametrize("peer", [{"podSelectr": {}}, {}, {"namespaceSelector": {}, "x": 1}])
def test_a_peer_with_unknown_or_no_fields_is_refused(peer: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"spec.networkPolicy.clientsFrom\[0\]"):
        network_policy(make_cluster(networkPolicy={"clientsFrom": [peer]}), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b=2,a=1", (("a", "1"), ("b", "2"))),
        (" a = 1 ", (("a", "1"),)),
        ("", None),
        ("a", None),
        ("=1", None),
    ],
)
def test_operator_labels_from_env(text: str, expected: Any) -> None:
    assert parse_labels(text) == expected
