"""NetworkPolicy ingress rules compiled per pod (pure), and the nftables text they become."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from localcluster import hosttools
from localcluster.netpolicy import Allow, Cluster, Port, allowed, ruleset, selects

Obj = dict[str, Any]
NODE = "10.213.0.1"


def pod(ns: str, name: str, ip: str | None, ports: list[Obj] | None = None, **labels: str) -> Obj:
    return {
        "metadata": {"namespace": ns, "name": name, "uid": f"{ns}-{name}", "labels": labels},
        "spec": {"containers": [{"name": "main", "ports": ports or []}]},
        "status": {"phase": "Running", "podIP": ip},
    }


def policy(ns: str, name: str, selector: Obj, ingress: list[Obj] | None, **spec: Any) -> Obj:
    body: Obj = {"podSelector": selector, **spec}
    if ingress is not None:
        body["ingress"] = ingress
    return {"metadata": {"namespace": ns, "name": name}, "spec": body}


NAMESPACES = {
    "a": {"kubernetes.io/metadata.name": "a", "team": "blue"},
    "b": {"kubernetes.io/metadata.name": "b", "team": "red"},
}
ETCD = pod("a", "etcd-0", "10.213.0.10", [{"name": "client", "containerPort": 2379}], app="etcd")
PEER = pod("a", "etcd-1", "10.213.0.11", app="etcd")
APP_A = pod("a", "app", "10.213.0.12", app="web")
APP_B = pod("b", "app", "10.213.0.13", app="web")
PENDING = pod("a", "new", None, app="etcd")
PODS = [ETCD, PEER, APP_A, APP_B, PENDING]


def test_a_pod_no_policy_selects_is_open_and_gets_no_table() -> None:
    other = policy("a", "p", {"matchLabels": {"app": "web"}}, [])
    assert allowed(ETCD, [other], PODS, NAMESPACES) is None
    text = ruleset(None, NODE)
    assert "chain" not in text and "delete table inet" in text


def test_a_policy_without_rules_isolates_the_pod_and_allows_nothing() -> None:
    deny = policy("a", "deny", {}, None)
    assert allowed(ETCD, [deny], PODS, NAMESPACES) == ()
    text = ruleset((), NODE)
    assert "policy drop;" in text
    assert f"ip saddr {NODE} accept" in text  # the node itself (probes) still gets in
    assert "ct state established,related accept" in text


def test_a_policy_of_another_namespace_or_of_egress_only_does_not_isolate() -> None:
    elsewhere = policy("b", "deny", {}, None)
    egress = policy("a", "egress", {}, None, policyTypes=["Egress"])
    assert allowed(ETCD, [elsewhere, egress], PODS, NAMESPACES) is None


def test_pod_selector_means_pods_of_the_policy_namespace_with_an_address() -> None:
    peers = policy("a", "peers", {"matchLabels": {"app": "etcd"}},
                   [{"from": [{"podSelector": {"matchLabels": {"app": "etcd"}}}],
                     "ports": [{"port": 2380}]}])  # fmt: skip
    assert allowed(ETCD, [peers], PODS, NAMESPACES) == (
        Allow(("10.213.0.10/32", "10.213.0.11/32"), (Port("TCP", 2380),)),
    )


def test_namespace_selector_alone_means_every_pod_of_those_namespaces() -> None:
    p = policy("a", "p", {}, [{"from": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}]}])
    assert allowed(ETCD, [p], PODS, NAMESPACES) == (Allow(("10.213.0.13/32",), None),)


def test_namespace_and_pod_selector_in_one_peer_intersect() -> None:
    both = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}
    p = policy("a", "p", {}, [{"from": [both]}])
    assert allowed(ETCD, [p], PODS, NAMESPACES) == (
        Allow(("10.213.0.12/32", "10.213.0.13/32"), None),
    )


def test_rules_of_every_selecting_policy_add_up() -> None:
    p1 = policy("a", "p1", {}, [{"from": [{"podSelector": {}}], "ports": [{"port": 2379}]}])
    p2 = policy("a", "p2", {"matchLabels": {"app": "etcd"}}, [{"ports": [{"port": "client"}]}])
    assert allowed(ETCD, [p2, p1], PODS, NAMESPACES) == (
        Allow(("10.213.0.10/32", "10.213.0.11/32", "10.213.0.12/32"), (Port("TCP", 2379),)),
        Allow(None, (Port("TCP", 2379),)),  # named port "client" of the target pod
    )


def test_a_named_port_the_pod_lacks_opens_nothing() -> None:
    p = policy("a", "p", {}, [{"ports": [{"port": "metrics"}]}])
    assert allowed(ETCD, [p], PODS, NAMESPACES) == ()


def test_ip_block_with_except_and_port_range_render_to_nft() -> None:
    p = policy("a", "p", {}, [{
        "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
        "ports": [{"port": 3000, "endPort": 3010}, {"protocol": "UDP", "port": 53}],
    }])  # fmt: skip
    allows = allowed(ETCD, [p], PODS, NAMESPACES)
    text = ruleset(allows, NODE)
    assert "ip saddr { 10.0.0.0/8 } ip saddr != { 10.1.0.0/16 } tcp dport { 3000-3010 } accept" in (
        text
    )
    assert "ip saddr { 10.0.0.0/8 } ip saddr != { 10.1.0.0/16 } udp dport { 53 } accept" in text


def test_finished_and_host_network_pods_are_no_sources() -> None:
    done = pod("a", "done", "10.213.0.20", app="etcd")
    done["status"]["phase"] = "Succeeded"
    host = pod("a", "host", "10.0.0.5", app="etcd")
    host["spec"]["hostNetwork"] = True
    p = policy("a", "p", {}, [{"from": [{"podSelector": {"matchLabels": {"app": "etcd"}}}]}])
    assert allowed(ETCD, [p], [ETCD, done, host], NAMESPACES) == (Allow(("10.213.0.10/32",), None),)


def test_a_selector_that_matches_no_pod_with_an_address_allows_nobody() -> None:
    p = policy("a", "p", {}, [{"from": [{"podSelector": {"matchLabels": {"app": "none"}}}]}])
    assert allowed(ETCD, [p], PODS, NAMESPACES) == ()


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
         {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
         {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)  # fmt: skip
def test_label_selectors(selector: Obj, labels: dict[str, str], expected: bool) -> None:
    assert selects(selector, labels) is expected


@pytest.mark.skipif(
    hosttools.nft_path() is None or os.geteuid() != 0, reason="needs nft and root (check mode)"
)
def test_nft_accepts_the_rulesets() -> None:
    p = policy("a", "p", {}, [
        {"from": [{"podSelector": {}},
                  {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
         "ports": [{"port": 2379}, {"port": 3000, "endPort": 3010}, {"protocol": "UDP"}]},
        {"from": [{"ipBlock": {"cidr": "fd00::/64"}}]},
        {},
    ])  # fmt: skip
    nft = hosttools.nft_path()
    assert nft is not None
    for text in (ruleset(allowed(ETCD, [p], PODS, NAMESPACES), NODE), ruleset(None, NODE)):
        proc = subprocess.run([nft, "-c", "-f", "-"], input=text, capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr + text


def test_cluster_admits_connection_by_connection_as_the_rules_say() -> None:
    p = policy("a", "p", {"matchLabels": {"app": "etcd"}}, [
        {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 2379}]},
        {"from": [{"ipBlock": {"cidr": "10.213.0.0/16", "except": ["10.213.0.13/32"]}}],
         "ports": [{"port": 3000, "endPort": 3010}]},
    ])  # fmt: skip
    cluster = Cluster(PODS, [p], NAMESPACES)
    etcd = "10.213.0.10"
    assert cluster.admits("10.213.0.12", etcd, 2379)  # web pod of namespace a
    assert not cluster.admits("10.213.0.13", etcd, 2379)  # web pod of namespace b
    assert not cluster.admits("10.213.0.12", etcd, 2380)
    assert cluster.admits("10.213.0.12", etcd, 3005)
    assert not cluster.admits("10.213.0.13", etcd, 3005)  # excepted from the block
    assert cluster.admits("10.213.0.1", etcd, 2380, node=["10.213.0.1"])
    assert cluster.admits("10.213.0.13", "10.213.0.12", 80), "no policy selects the web pod"
