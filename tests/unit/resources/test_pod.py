"""The member pod: etcd flags, probes, restricted security, template, spec hash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.naming import initial_cluster, member_name
from etcd_operator.planner import ClusterState, InitialCluster
from etcd_operator.resources import member_pod, pod_spec_hash
from etcd_operator.resources.labels import (
    BOOTSTRAP_MEMBERS_ANNOTATION,
    ETCD_VERSION_ANNOTATION,
    SPEC_HASH_ANNOTATION,
)
from unit.support.clusters import make_cluster

BOOT = initial_cluster("demo", "ns", ["demo-0", "demo-1", "demo-2"])


def _initial(state: str, members: dict[str, str], token: str) -> InitialCluster:
    return InitialCluster(ClusterState(state), tuple(members.items()), token)


def _pod(state: str = "new", members: dict[str, str] = BOOT, **spec: Any) -> dict[str, Any]:
    cluster = make_cluster(**spec)
    initial = _initial(state, members, "demo-uid-1")
    pod = member_pod(cluster, "demo-1", cluster.spec.version, initial)
    result: dict[str, Any] = pod.to_dict()
    return result


def _args(pod: dict[str, Any]) -> list[str]:
    args: list[str] = pod["spec"]["containers"][0]["args"]
    return args


def test_bootstrap_member_flags() -> None:
    args = _args(_pod())
    assert "--name=demo-1" in args
    assert "--data-dir=/var/lib/etcd/data" in args
    assert "--initial-cluster-state=new" in args
    assert "--initial-cluster-token=demo-uid-1" in args
    assert "--listen-peer-urls=http://0.0.0.0:2380" in args
    assert "--listen-client-urls=http://0.0.0.0:2379" in args
    assert "--listen-metrics-urls=http://0.0.0.0:2381" in args
    assert "--advertise-client-urls=http://demo-1.demo.ns.svc.cluster.local:2379" in args
    assert "--initial-advertise-peer-urls=http://demo-1.demo.ns.svc.cluster.local:2380" in args
    assert (
        "--initial-cluster=demo-0=http://demo-0.demo.ns.svc.cluster.local:2380,"
        "demo-1=http://demo-1.demo.ns.svc.cluster.local:2380,"
        "demo-2=http://demo-2.demo.ns.svc.cluster.local:2380"
    ) in args


def test_joining_member_starts_as_existing_with_the_cluster_it_joins() -> None:
    members = {m: u for m, u in BOOT.items() if m != "demo-2"}
    args = _args(_pod("existing", members))
    assert "--initial-cluster-state=existing" in args
    assert not any("demo-2=" in a for a in args)


def test_initial_cluster_is_ordered_by_ordinal_whatever_the_input_order() -> None:
    members = {f"demo-{i}": f"http://demo-{i}:2380" for i in (10, 1, 2)}
    flag = next(a for a in _args(_pod(members=members)) if a.startswith("--initial-cluster="))
    assert flag.index("demo-1=") < flag.index("demo-2=") < flag.index("demo-10=")


def test_a_member_missing_from_its_initial_cluster_is_refused() -> None:
    with pytest.raises(ValueError, match="must include the member itself"):
        _pod(members={"demo-0": "http://x:2380"})


def test_tuning_flags_follow_the_spec() -> None:
    args = _args(
        _pod(
            etcd={
                "heartbeatIntervalMs": 200,
                "electionTimeoutMs": 2000,
                "snapshotCount": 5000,
                "quotaBackendBytes": 4 * 2**30,
                "autoCompactionMode": "revision",
                "autoCompactionRetention": "1000",
            }
        )
    )
    for flag in (
        "--heartbeat-interval=200",
        "--election-timeout=2000",
        "--snapshot-count=5000",
        f"--quota-backend-bytes={4 * 2**30}",
        "--auto-compaction-mode=revision",
        "--auto-compaction-retention=1000",
    ):
        assert flag in args
    defaults = _args(_pod())
    assert not any(a.startswith(("--snapshot-count", "--quota-backend-bytes")) for a in defaults)


def test_pod_identity_dns_owner_and_labels() -> None:
    pod = _pod(podTemplate={"labels": {"team": "db", "app.kubernetes.io/instance": "evil"}})
    meta, spec = pod["metadata"], pod["spec"]
    assert (meta["name"], meta["namespace"]) == ("demo-1", "ns")
    assert (spec["hostname"], spec["subdomain"]) == ("demo-1", "demo")
    assert meta["labels"] == {
        "team": "db",
        "app.kubernetes.io/name": "etcd",
        "app.kubernetes.io/instance": "demo",  # the operator's labels win
        "app.kubernetes.io/managed-by": "etcd-operator",
        "app.kubernetes.io/component": "member",
        "etcd.operator.io/member": "demo-1",
    }
    [owner] = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "name": "demo",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_container_runs_etcd_from_the_version_image() -> None:
    container = _pod(version="3.5.35")["spec"]["containers"][0]
    assert container["name"] == "etcd"
    assert container["command"] == ["etcd"]
    assert container["image"] == "gcr.io/etcd-development/etcd:v3.5.35"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "client": 2379,
        "peer": 2380,
        "metrics": 2381,
    }
    assert _pod(image="mirror/etcd:x")["spec"]["containers"][0]["image"] == "mirror/etcd:x"


def test_probes_use_readyz_and_livez_on_the_metrics_port() -> None:
    container = _pod()["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": 2381,
        "scheme": "HTTP",
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    liveness = container["livenessProbe"]
    # A defragmenting member stalls reads; liveness must wait minutes, not seconds.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 180
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_old_members_without_readyz_are_probed_through_health() -> None:
    container = _pod(version="3.5.9")["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health?exclude=NOSPACE"
    assert "serializable=true" in container["livenessProbe"]["httpGet"]["path"]


def test_pod_passes_the_restricted_pod_security_standard() -> None:
    spec = _pod()["spec"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert all(set(v) <= {"name", "persistentVolumeClaim", "emptyDir"} for v in spec["volumes"])
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False
    assert spec["terminationGracePeriodSeconds"] >= 30


def test_data_volume_is_the_member_claim_or_an_empty_dir() -> None:
    assert _pod()["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "demo-1"}}
    ]
    assert _pod(storage={"emptyDir": True, "size": "2Gi"})["spec"]["volumes"] == [
        {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}}
    ]


def test_pod_template_scheduling_and_resources_are_copied() -> None:
    toleration = {"key": "dedicated", "operator": "Equal", "value": "etcd", "effect": "NoSchedule"}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]
            }
        }
    }
    spread = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
    spec = _pod(
        podTemplate={
            "annotations": {"note": "x"},
            "resources": {
                "requests": {"cpu": "500m", "memory": 2**30},
                "limits": {"memory": "2Gi"},
            },
            "affinity": affinity,
            "tolerations": [toleration],
            "nodeSelector": {"disk": "ssd"},
            "topologySpreadConstraints": [spread],
            "priorityClassName": "system-cluster-critical",
        }
    )
    pod_spec = spec["spec"]
    assert pod_spec["containers"][0]["resources"] == {
        "requests": {"cpu": "500m", "memory": str(2**30)},
        "limits": {"memory": "2Gi"},
    }
    assert pod_spec["affinity"] == affinity
    assert pod_spec["tolerations"] == [toleration]
    assert pod_spec["nodeSelector"] == {"disk": "ssd"}
    assert pod_spec["topologySpreadConstraints"] == [spread]
    assert pod_spec["priorityClassName"] == "system-cluster-critical"
    assert spec["metadata"]["annotations"]["note"] == "x"


def test_members_prefer_different_nodes_by_default() -> None:
    [term] = _pod()["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_a_malformed_affinity_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"spec\.podTemplate\.affinity"):
        _pod(podTemplate={"affinity": {"nodeAffinity": 5}})


def test_spec_hash_ignores_bootstrap_flags_and_metadata() -> None:
    boot = _pod()
    joined = _pod("existing", {"demo-1": BOOT["demo-1"]})
    relabelled = _pod(podTemplate={"labels": {"x": "y"}, "annotations": {"a": "b"}})
    hashes = {
        p["metadata"]["annotations"][SPEC_HASH_ANNOTATION] for p in (boot, joined, relabelled)
    }
    assert len(hashes) == 1
    assert boot["metadata"]["annotations"][ETCD_VERSION_ANNOTATION] == "3.6.16"


@given(
    change=st.sampled_from(
        [
            {"version": "3.5.35"},
            {"image": "mirror/etcd:v3.6.16"},
            {"etcd": {"heartbeatIntervalMs": 150}},
            {"podTemplate": {"nodeSelector": {"a": "b"}}},
            {"podTemplate": {"resources": {"limits": {"memory": "1Gi"}}}},
        ]
    )
)
def test_spec_hash_changes_when_what_the_pod_runs_changes(change: dict[str, Any]) -> None:
    assert (
        _pod(**change)["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        != _pod()["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    )


def test_spec_hash_of_a_built_pod_is_reproducible() -> None:
    cluster = make_cluster()
    pod = member_pod(cluster, member_name("demo", 0), "3.6.16", _initial("new", BOOT, "t"))
    assert pod.metadata is not None and pod.metadata.annotations is not None
    assert pod_spec_hash(pod) == pod.metadata.annotations[SPEC_HASH_ANNOTATION]


def test_member_init_is_told_which_log_to_find_and_that_does_not_change_the_hash() -> None:
    from etcd_operator.resources.pod import MEMBER_INIT_CONTAINER, member_pod, pod_spec_hash

    cluster = make_cluster()
    peers = {"demo-0": "http://demo-0.demo.default.svc.cluster.local:2380"}
    new, existing = _initial("new", peers, "t"), _initial("existing", peers, "t")
    fresh = member_pod(cluster, "demo-0", "3.6.16", new, operator_image="op:1")
    rejoin = member_pod(cluster, "demo-0", "3.6.16", existing, member_id=0xABC)
    assert fresh.spec is not None and rejoin.spec is not None
    (init,) = fresh.spec.initContainers or []
    assert init.name == MEMBER_INIT_CONTAINER and init.image == "op:1"
    assert not any(a.startswith("--member-id") for a in init.args or [])
    assert "--member-id=abc" in (rejoin.spec.initContainers or [])[0].args
    rejoin_elsewhere = member_pod(
        cluster,
        "demo-0",
        "3.6.16",
        existing,
        member_id=0xABC,
        claim="demo-0-1",
        operator_image="op:1",
    )
    assert pod_spec_hash(fresh) == pod_spec_hash(rejoin_elsewhere)


def test_the_pod_mounts_the_claim_it_is_given() -> None:
    cluster = make_cluster()
    pod = member_pod(cluster, "demo-1", "3.6.16", _initial("existing", BOOT, "t"), claim="demo-1-2")
    (volume,) = pod.to_dict()["spec"]["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == "demo-1-2"
    default = member_pod(cluster, "demo-1", "3.6.16", _initial("existing", BOOT, "t")).to_dict()
    assert default["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "demo-1"


def test_the_pod_runs_the_version_it_is_given_not_spec_version() -> None:
    cluster = make_cluster(version="3.6.16")
    pod = member_pod(cluster, "demo-1", "3.5.35", _initial("existing", BOOT, "t")).to_dict()
    container = pod["spec"]["containers"][0]
    assert container["image"] == "gcr.io/etcd-development/etcd:v3.5.35"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["metadata"]["annotations"][ETCD_VERSION_ANNOTATION] == "3.5.35"
    assert BOOTSTRAP_MEMBERS_ANNOTATION not in pod["metadata"]["annotations"]


def test_a_bootstrap_member_records_the_static_initial_cluster() -> None:
    annotations = _pod()["metadata"]["annotations"]
    assert annotations[BOOTSTRAP_MEMBERS_ANNOTATION] == "demo-0,demo-1,demo-2"


# --- template hash: which pods a rollout restarts ---------------------------------------------


def _built(version: str = "3.6.16", state: str = "existing", **spec: Any) -> Any:
    from etcd_operator.resources.pod import member_pod

    return member_pod(make_cluster(**spec), "demo-1", version, _initial(state, BOOT, "t"))


def test_a_pod_built_from_the_current_spec_is_not_outdated_whatever_its_start() -> None:
    from etcd_operator.resources import pod_outdated

    cluster = make_cluster(etcd={"quotaBackendBytes": 4_000_000_000})
    for state in ("new", "existing"):
        pod = _built(state=state, etcd={"quotaBackendBytes": 4_000_000_000})
        assert not pod_outdated(cluster, pod)
    # its version is not the rollout's business: the upgrade rules own it
    assert not pod_outdated(cluster, _built("3.5.35", etcd={"quotaBackendBytes": 4_000_000_000}))


@given(
    change=st.sampled_from(
        [
            {"image": "mirror/etcd:v3.6.16"},
            {"etcd": {"quotaBackendBytes": 4_000_000_000}},
            {"etcd": {"heartbeatIntervalMs": 150}},
            {"podTemplate": {"nodeSelector": {"a": "b"}}},
            {"podTemplate": {"labels": {"team": "x"}}},
            {"podTemplate": {"resources": {"limits": {"memory": "1Gi"}}}},
            {"storage": {"emptyDir": True, "size": "2Gi"}},
        ]
    )
)
def test_a_spec_change_that_shapes_the_pod_makes_it_outdated(change: dict[str, Any]) -> None:
    from etcd_operator.resources import pod_outdated

    assert pod_outdated(make_cluster(**change), _built())
    assert not pod_outdated(make_cluster(**change), _built(**change))


def test_fields_left_at_their_defaults_do_not_count() -> None:
    from etcd_operator.resources import template_hash

    explicit = make_cluster(etcd={"heartbeatIntervalMs": 100, "electionTimeoutMs": 1000})
    assert template_hash(explicit) == template_hash(make_cluster())
    # the claim's size is not part of a pod (claims grow in place)
    assert template_hash(make_cluster(storage={"size": "5Gi"})) == template_hash(make_cluster())


def _legacy(pod: Any) -> Any:
    """The pod as an operator release before template hashes created it."""
    from etcd_operator.resources.labels import TEMPLATE_HASH_ANNOTATION

    del pod.metadata.annotations[TEMPLATE_HASH_ANNOTATION]
    pod.spec.initContainers[0].image = "ghcr.io/etcd-operator/etcd-operator:0.0.1"
    return pod


def test_pods_of_an_older_operator_roll_only_when_their_command_line_or_image_differ() -> None:
    from etcd_operator.resources import pod_outdated

    cluster = make_cluster()
    assert not pod_outdated(cluster, _legacy(_built(state="new")))
    assert not pod_outdated(cluster, _legacy(_built("3.5.35")))
    quota = make_cluster(etcd={"quotaBackendBytes": 4_000_000_000})
    assert pod_outdated(quota, _legacy(_built()))
    assert pod_outdated(make_cluster(image="mirror/etcd:v3.6.16"), _legacy(_built()))
    # what an older pod does not show exactly (a node selector) waits for its next restart
    assert not pod_outdated(
        make_cluster(podTemplate={"nodeSelector": {"a": "b"}}), _legacy(_built())
    )
