"""Cluster DNS records and hosts-file rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localcluster import dns, hostsfile
from localcluster.paths import PodRecord


def pod(name: str, ip: str, ready: bool, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "etcd"}},
        "spec": spec,
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(name: str, publish_not_ready: bool = False) -> dict[str, Any]:
    spec = {"clusterIP": "None", "selector": {"app": "etcd"}}
    spec["publishNotReadyAddresses"] = publish_not_ready  # type: ignore[assignment]
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_headless_service_records_honour_readiness() -> None:
    pods = [
        pod("etcd-0", "10.213.0.10", True, hostname="etcd-0", subdomain="etcd"),
        pod("etcd-1", "10.213.0.11", False, hostname="etcd-1", subdomain="etcd"),
    ]
    records = dns.compute_records(pods, [service("etcd"), service("etcd-all", True)])
    assert records["etcd.default.svc.cluster.local"] == ["10.213.0.10"]
    assert records["etcd-all.default.svc.cluster.local"] == ["10.213.0.10", "10.213.0.11"]
    assert records["etcd-0.etcd.default.svc.cluster.local"] == ["10.213.0.10"]
    assert "etcd-1.etcd.default.svc.cluster.local" not in records
    assert records["10-213-0-11.default.pod.cluster.local"] == ["10.213.0.11"]


def test_host_block_has_svc_short_forms() -> None:
    block = dns.host_block({"etcd-0.etcd.default.svc.cluster.local": ["10.213.0.10"]})
    assert "10.213.0.10 etcd-0.etcd.default.svc.cluster.local etcd-0.etcd.default.svc" in block
    assert block.startswith(hostsfile.BEGIN)


def test_pod_hosts_have_namespace_relative_names() -> None:
    record = PodRecord(
        "default", "etcd-0", "u", "n", "lc-x", "lcvx", "10.213.0.10", "etcd-0", "etcd"
    )
    text = dns.pod_hosts({"etcd-1.etcd.default.svc.cluster.local": ["10.213.0.11"]}, record)
    assert "10.213.0.10 etcd-0.etcd.default.svc.cluster.local etcd-0" in text
    line = next(x for x in text.splitlines() if x.startswith("10.213.0.11"))
    assert set(line.split()[1:]) >= {
        "etcd-1.etcd",
        "etcd-1.etcd.default",
        "etcd-1.etcd.default.svc",
    }


def test_host_block_is_replaced_in_place_and_removed(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost")
    inode = hosts.stat().st_ino
    hostsfile.write_host_block(dns.host_block({"a.b.svc.cluster.local": ["10.0.0.1"]}), hosts)
    hostsfile.write_host_block(dns.host_block({"a.b.svc.cluster.local": ["10.0.0.2"]}), hosts)
    text = hosts.read_text()
    assert text.count(hostsfile.BEGIN) == 1 and "10.0.0.2" in text and "10.0.0.1" not in text
    hostsfile.remove_host_block(hosts)
    assert hosts.read_text() == "127.0.0.1 localhost\n"
    assert hosts.stat().st_ino == inode


def test_cluster_ip_services_resolve_to_their_cluster_ip() -> None:
    svc = service("client")
    svc["spec"]["clusterIP"] = "10.214.0.7"
    records = dns.compute_records([pod("etcd-0", "10.213.0.10", True)], [svc])
    assert records["client.default.svc.cluster.local"] == ["10.214.0.7"]
