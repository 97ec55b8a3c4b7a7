"""Names, DNS names and URLs of a cluster's objects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from etcd_operator import naming


def test_member_and_service_names() -> None:
    assert naming.member_name("demo", 2) == "demo-2"
    assert naming.peer_service_name("demo") == "demo"
    assert naming.client_service_name("demo") == "demo-client"
    assert naming.pvc_name("demo-2") == "demo-2"


def test_member_urls_go_through_the_peer_service() -> None:
    assert naming.member_dns_name("demo-0", "demo", "ns") == "demo-0.demo.ns.svc.cluster.local"
    assert naming.peer_url("demo-0", "demo", "ns") == "http://demo-0.demo.ns.svc.cluster.local:2380"
    assert (
        naming.client_url("demo-0", "demo", "ns", cluster_domain="k8s.example")
        == "http://demo-0.demo.ns.svc.k8s.example:2379"
    )
    assert naming.client_endpoint("demo", "ns") == "http://demo-client.ns.svc:2379"


def test_initial_cluster_maps_names_to_peer_urls() -> None:
    members = [naming.member_name("demo", i) for i in range(3)]
    assert naming.initial_cluster("demo", "ns", members) == {
        m: f"http://{m}.demo.ns.svc.cluster.local:2380" for m in members
    }


def test_token_is_unique_per_object() -> None:
    assert naming.cluster_token("demo", "u1") != naming.cluster_token("demo", "u2")


@given(st.integers(min_value=0, max_value=10_000))
def test_ordinal_round_trips(ordinal: int) -> None:
    assert naming.ordinal_of(naming.member_name("demo", ordinal), "demo") == ordinal


def test_names_of_other_clusters_have_no_ordinal() -> None:
    assert naming.ordinal_of("demo-client", "demo") is None
    assert naming.ordinal_of("demo-01", "demo") is None
    assert naming.ordinal_of("other-1", "demo") is None
    assert naming.ordinal_of("demo-1", "de") is None


def test_cluster_domains_are_dns_names() -> None:
    for good in ("cluster.local", "k8s.example.com", "a", "x-1.y"):
        assert naming.valid_cluster_domain(good), good
    for bad in ("", "cluster.local.", ".local", "Cluster.local", "a..b", "-a.b", "a_b", "a" * 64):
        assert not naming.valid_cluster_domain(bad), bad
    members = [naming.member_name("demo", 0)]
    assert naming.initial_cluster("demo", "ns", members, "corp.example") == {
        "demo-0": "http://demo-0.demo.ns.svc.corp.example:2380"
    }
