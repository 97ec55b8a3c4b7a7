"""A 3-member etcd cluster from plain manifests runs on the process node like on a kubelet."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Namespace, Pod

from localcluster import faults
from localcluster.config import StateDir
from localcluster.testing import pods as t

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MEMBERS = ("etcd-0", "etcd-1", "etcd-2")


@pytest.fixture(scope="module")
def version(state: StateDir) -> str:
    """The newest etcd version the node agents can run."""
    versions = t.etcd_versions(state)
    if not versions:
        pytest.skip("the node agents know no etcd binaries")
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


@pytest.fixture(scope="module")
def bin_dir(state: StateDir, version: str) -> Path:
    return t.etcd_versions(state)[version]


def manifests(ns: str, version: str) -> list[dict[str, Any]]:
    domain = f"etcd.{ns}.svc.cluster.local"
    initial = ",".join(f"{m}=http://{m}.{domain}:2380" for m in MEMBERS)
    objs: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "etcd", "namespace": ns},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {"app": "etcd"},
                 "ports": [{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}]},
    }]  # fmt: skip
    for m in MEMBERS:
        objs.append({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"data-{m}", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"],  # the default StorageClass
                     "resources": {"requests": {"storage": "1Gi"}}},
        })  # fmt: skip
        objs.append(member_pod(ns, m, version, initial))
    return objs


def member_pod(ns: str, name: str, version: str, initial: str) -> dict[str, Any]:
    advertise = f"http://$(POD_NAME).etcd.{ns}.svc.cluster.local"
    args = [
        "--name=$(POD_NAME)", "--data-dir=/var/lib/etcd/data",
        "--listen-client-urls=http://0.0.0.0:2379", f"--advertise-client-urls={advertise}:2379",
        "--listen-peer-urls=http://0.0.0.0:2380", f"--initial-advertise-peer-urls={advertise}:2380",
        f"--initial-cluster={initial}", "--initial-cluster-state=new",
        f"--initial-cluster-token={ns}",
    ]  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "etcd"}},
        "spec": {
            "hostname": name, "subdomain": "etcd", "terminationGracePeriodSeconds": 10,
            "containers": [{
                "name": "etcd", "image": f"quay.io/coreos/etcd:v{version}",
                "command": ["/usr/local/bin/etcd"], "args": args,
                "env": [{"name": "POD_NAME",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"name": "client", "containerPort": 2379},
                          {"name": "peer", "containerPort": 2380}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "client"},
                                   "periodSeconds": 1, "failureThreshold": 2},
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/etcd"}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{name}"}}],
        },
    }  # fmt: skip


def started_at(api: Client, ns: str, name: str) -> str | None:
    started: str | None = t.pod_status(api, ns, name).get("startTime")
    return started


def endpoint(ns: str, member: str) -> str:
    return f"http://{member}.etcd.{ns}.svc.cluster.local:2379"


@pytest.fixture(scope="module")
def cluster(api: Client, version: str) -> Iterator[str]:
    """Namespace with a ready 3-member cluster; prints how long forming it took."""
    ns = f"node-etcd-{uuid.uuid4().hex[:6]}"
    t.create_namespace(api, ns)
    try:
        started = time.monotonic()
        t.create(api, *manifests(ns, version))
        for m in MEMBERS:
            t.wait_for(functools.partial(started_at, api, ns, m), timeout=120)
        placed = time.monotonic() - started  # PVCs bound, pods scheduled, sandboxes up
        for m in MEMBERS:
            t.wait_for(functools.partial(t.is_ready, api, ns, m), timeout=120, what=f"{m} ready")
        print(f"\n3-member etcd cluster: pods started after {placed:.1f}s, "
              f"all Ready after {time.monotonic() - started:.1f}s")  # fmt: skip
        yield ns
    finally:
        api.delete(Namespace, ns)


def test_members_are_healthy_and_reachable_by_name_from_the_host(
    cluster: str, bin_dir: Path
) -> None:
    endpoints = [endpoint(cluster, m) for m in MEMBERS]
    out = t.wait_for(lambda: t.etcdctl(bin_dir, endpoints, "endpoint", "health"), timeout=30)
    assert out.count("is healthy") == 3
    members = t.etcdctl(bin_dir, endpoints[:1], "member", "list")
    assert all(f"{m}.etcd.{cluster}.svc.cluster.local:2380" in members for m in MEMBERS)


def test_a_key_survives_deleting_and_recreating_a_pod_on_the_same_pvc(
    state: StateDir, api: Client, cluster: str, bin_dir: Path
) -> None:
    t.etcdctl(bin_dir, [endpoint(cluster, "etcd-0")], "put", "survivor", "yes")
    pvc_dir = faults.volume_path(state, cluster, "data-etcd-1")
    pod = api.get(Pod, "etcd-1", namespace=cluster).to_dict()
    api.delete(Pod, "etcd-1", namespace=cluster)
    t.wait_for(lambda: t.gone(api, cluster, "etcd-1"), timeout=60, what="etcd-1 gone")
    assert (pvc_dir / "data" / "member").is_dir()
    body = {k: pod[k] for k in ("apiVersion", "kind", "spec")}
    body["metadata"] = {k: pod["metadata"][k] for k in ("name", "namespace", "labels")}
    del body["spec"]["nodeName"]
    t.create(api, body)
    t.wait_for(lambda: t.is_ready(api, cluster, "etcd-1"), timeout=60, what="etcd-1 back")
    local = [endpoint(cluster, "etcd-1")]
    out = t.wait_for(lambda: t.etcdctl(bin_dir, local, "get", "survivor", "--consistency=s"))
    assert out.split() == ["survivor", "yes"]


def test_a_partitioned_member_is_cut_off_while_the_others_keep_quorum(
    state: StateDir, api: Client, cluster: str, bin_dir: Path
) -> None:
    others = [endpoint(cluster, m) for m in ("etcd-0", "etcd-1")]
    faults.partition_pod(state, cluster, "etcd-2")
    try:
        with pytest.raises(OSError):
            t.etcdctl(bin_dir, [endpoint(cluster, "etcd-2")], "get", "x", timeout=2)
        t.etcdctl(bin_dir, others, "put", "during-partition", "1")
        t.wait_for(lambda: not t.is_ready(api, cluster, "etcd-2"), timeout=20, what="unready")
    finally:
        faults.heal_pod(state, cluster, "etcd-2")
    t.wait_for(lambda: t.is_ready(api, cluster, "etcd-2"), timeout=60, what="etcd-2 ready")
    out = t.wait_for(
        lambda: t.etcdctl(bin_dir, [endpoint(cluster, "etcd-2")], "get", "during-partition",
                          "--consistency=s"),
        timeout=30,
    )  # fmt: skip
    assert out.split() == ["during-partition", "1"]


def test_a_cluster_ip_service_reaches_members_from_host_and_pods(
    api: Client, cluster: str, bin_dir: Path, version: str
) -> None:
    t.create(api, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "etcd-client", "namespace": cluster},
        "spec": {"selector": {"app": "etcd"}, "ports": [{"name": "client", "port": 2379}]},
    })  # fmt: skip
    via_service = [f"http://etcd-client.{cluster}.svc:2379"]
    t.wait_for(lambda: t.etcdctl(bin_dir, via_service, "put", "via-proxy", "1"), timeout=30)
    # Inside a pod: the short name resolves, and the ClusterIP routes through the host.
    t.create(api, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": cluster},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "etcdctl", "image": f"registry.k8s.io/etcd:{version}-0",
            "command": ["etcdctl", "--endpoints=http://etcd-client:2379", "get", "via-proxy"],
        }]},
    })  # fmt: skip
    status = t.wait_for(lambda: t.finished(api, cluster, "client"), timeout=60)
    assert status["phase"] == "Succeeded", status
