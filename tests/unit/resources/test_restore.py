"""The restore init steps of an initial member pod, and the verification pod."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.api.restore import parse_restore
from etcd_operator.naming import MemberTLS, initial_cluster
from etcd_operator.planner import ClusterState, InitialCluster
from etcd_operator.resources import member_pod
from etcd_operator.resources.restore import (
    CHECK_CONTAINER,
    COMMIT_CONTAINER,
    FETCH_CONTAINER,
    RESTORE_CONTAINER,
    STATUS_CONTAINER,
    verification_pod,
)
from unit.support.clusters import make_cluster

SHA = "b" * 64
SOURCE = {"volume": {"claimName": "backups", "path": "daily/snap.db"}, "sha256": SHA}
AUTO = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}


def _restoring_pod(
    state: ClusterState = ClusterState.NEW, tls: dict[str, Any] | None = None
) -> dict[str, Any]:
    cluster = make_cluster(bootstrap={"restore": SOURCE}, tls=tls or {})
    member_tls = cluster.spec.tls.member_tls()
    peers = initial_cluster("demo", "ns", ["demo-0", "demo-1", "demo-2"], tls=member_tls)
    initial = InitialCluster(state, tuple(peers.items()), "demo-uid-1")
    pod = member_pod(
        cluster,
        "demo-1",
        "3.6.16",
        initial,
        restore=cluster.spec.bootstrap.restore,
        operator_image="op:1",
    )
    built: dict[str, Any] = pod.to_dict()
    return built


def _init(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["spec"]["initContainers"]}


def test_an_initial_member_checks_fetches_restores_then_commits_before_etcd_starts() -> None:
    pod = _restoring_pod()
    names = [c["name"] for c in pod["spec"]["initContainers"]]
    assert names == ["member-init", FETCH_CONTAINER, RESTORE_CONTAINER, COMMIT_CONTAINER]
    init = _init(pod)
    fetch = init[FETCH_CONTAINER]
    assert fetch["image"] == "op:1"
    assert f"--sha256={SHA}" in fetch["args"]
    assert any(a.endswith("/daily/snap.db") for a in fetch["args"])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["snapshot-source"]["persistentVolumeClaim"] == {
        "claimName": "backups",
        "readOnly": True,
    }
    assert "emptyDir" in volumes["snapshot"]
    restore = init[RESTORE_CONTAINER]
    assert restore["image"].endswith(":v3.6.16")
    assert restore["command"] == ["etcdutl"]
    assert restore["args"][:2] == ["snapshot", "restore"]
    # The restored member is exactly the member etcd then starts as.
    etcd = pod["spec"]["containers"][0]["args"]
    for flag in (
        "--name=",
        "--initial-cluster=",
        "--initial-cluster-token=",
        "--initial-advertise-peer-urls=",
    ):
        wanted = [a for a in etcd if a.startswith(flag)]
        assert wanted and wanted == [a for a in restore["args"] if a.startswith(flag)]
    staging = next(a for a in restore["args"] if a.startswith("--data-dir="))
    assert staging != "--data-dir=/var/lib/etcd/data"
    commit = init[COMMIT_CONTAINER]
    assert commit["args"] == [
        "restore-commit",
        f"--staging={staging.removeprefix('--data-dir=')}",
        "--data-dir=/var/lib/etcd/data",
    ]
    for container in init.values():
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_restored_members_take_https_peer_urls_from_their_tls() -> None:
    restore = _init(_restoring_pod(tls=AUTO))[RESTORE_CONTAINER]
    assert (
        "--initial-advertise-peer-urls=https://demo-1.demo.ns.svc.cluster.local:2380"
        in (restore["args"])
    )
    cluster_flag = next(a for a in restore["args"] if a.startswith("--initial-cluster="))
    assert cluster_flag.count("https://") == 3


def test_a_member_joining_a_running_cluster_is_never_restored() -> None:
    with pytest.raises(ValueError, match="only an initial member"):
        _restoring_pod(ClusterState.EXISTING)
    cluster = make_cluster(bootstrap={"restore": SOURCE})
    peers = initial_cluster("demo", "ns", ["demo-0"], tls=MemberTLS())
    plain = member_pod(
        cluster, "demo-0", "3.6.16", InitialCluster(ClusterState.NEW, tuple(peers.items()), "t")
    ).to_dict()
    assert [c["name"] for c in plain["spec"]["initContainers"]] == ["member-init"]


def test_the_verification_pod_checks_with_the_clusters_etcd_and_belongs_to_the_restore() -> None:
    restore = parse_restore(
        {
            "metadata": {"name": "r1", "namespace": "ns", "uid": "u-1"},
            "spec": {"source": SOURCE, "cluster": {"name": "new", "spec": {"version": "3.5.17"}}},
        }
    )
    location = restore.spec.source.location()
    assert location is not None
    pod = verification_pod(restore, location, operator_image="op:1").to_dict()
    assert pod["metadata"]["name"] == "r1-verify"
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("EtcdRestore", "u-1", True)
    assert pod["spec"]["restartPolicy"] == "Never"
    fetch, check = pod["spec"]["initContainers"]
    assert fetch["name"] == FETCH_CONTAINER and f"--sha256={SHA}" in fetch["args"]
    assert check["name"] == CHECK_CONTAINER
    assert check["image"].endswith(":v3.5.17") and check["args"][:2] == ["snapshot", "restore"]
    (status,) = pod["spec"]["containers"]
    assert status["name"] == STATUS_CONTAINER
    assert status["args"] == [
        "snapshot",
        "status",
        "/var/lib/etcd-snapshot/snapshot.db",
        "--write-out=json",
    ]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_an_s3_source_is_read_with_the_mounted_secret_never_a_key_in_the_args() -> None:
    s3 = {"bucket": "snaps", "key": "a.db", "credentialsSecretName": "keys", "forcePathStyle": True}
    cluster = make_cluster(bootstrap={"restore": {"s3": s3, "sha256": SHA}})
    peers = initial_cluster("demo", "ns", ["demo-0"], tls=MemberTLS())
    initial = InitialCluster(ClusterState.NEW, tuple(peers.items()), "t")
    pod = member_pod(
        cluster, "demo-0", "3.6.16", initial, restore=cluster.spec.bootstrap.restore
    ).to_dict()
    fetch = _init(pod)[FETCH_CONTAINER]
    s3_arg = next(a for a in fetch["args"] if a.startswith("--s3="))
    assert '"bucket": "snaps"' in s3_arg and '"key": "a.db"' in s3_arg
    assert "--s3-credentials=/etc/etcd-snapshot/s3" in fetch["args"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["snapshot-s3-credentials"]["secret"]["secretName"] == "keys"
    assert not any("persistentVolumeClaim" in v and v["name"] != "data" for v in volumes.values())
