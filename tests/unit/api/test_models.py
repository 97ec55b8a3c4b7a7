"""EtcdCluster models: defaults, validation with clear messages, parsing kopf dicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from etcd_operator.api import (
    API_VERSION,
    DEFAULT_ETCD_VERSION,
    ClusterPhase,
    Condition,
    ConditionStatus,
    EtcdCluster,
    EtcdClusterSpec,
    EtcdClusterStatus,
    InvalidSpecError,
    LastOperation,
    MemberStatus,
    OperationState,
    parse_cluster,
    parse_spec,
    parse_status,
)
from etcd_operator.api.quantity import parse_quantity


def test_an_empty_spec_gets_every_default() -> None:
    spec = parse_spec({})
    assert spec.replicas == 3
    assert spec.version == DEFAULT_ETCD_VERSION == "3.6.16"
    assert spec.image is None
    assert spec.effective_image == "gcr.io/etcd-development/etcd:v3.6.16"
    assert spec.storage.size == "1Gi"
    assert spec.storage.storage_class_name is None
    assert spec.storage.empty_dir is False
    assert spec.etcd.heartbeat_interval_ms == 100
    assert spec.etcd.election_timeout_ms == 1000
    assert spec.etcd.auto_compaction_mode == "periodic"
    assert spec.etcd.auto_compaction_retention == "1h"
    assert spec.pvc_retention_policy.when_deleted == "Retain"
    assert spec.pvc_retention_policy.when_scaled == "Retain"
    assert spec.pod_disruption_budget.enabled is True
    assert spec.paused is False
    assert parse_spec(None) == spec


def test_the_image_override_wins_over_the_version_image() -> None:
    spec = parse_spec({"version": "3.5.35", "image": "registry.local/etcd:custom"})
    assert spec.effective_image == "registry.local/etcd:custom"


def test_an_image_tag_naming_another_release_than_version_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match=r"names etcd 3\.5\.35 in its tag"):
        parse_spec({"version": "3.6.16", "image": "registry.local/etcd:v3.5.35"})
    spec = parse_spec({"version": "3.6.16", "image": "registry.local/etcd:v3.6.16"})
    assert spec.image_for("3.5.35") == "registry.local/etcd:v3.5.35"  # mid-rollout members


def test_spec_accepts_camel_case_wire_names() -> None:
    spec = parse_spec(
        {
            "storage": {"storageClassName": "fast", "emptyDir": True},
            "podTemplate": {"nodeSelector": {"disk": "ssd"}, "priorityClassName": "high"},
            "etcd": {"quotaBackendBytes": 8 * 2**30, "snapshotCount": 5000},
            "pvcRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
            "podDisruptionBudget": {"enabled": False},
        }
    )
    assert spec.storage.storage_class_name == "fast"
    assert spec.pod_template.node_selector == {"disk": "ssd"}
    assert spec.etcd.quota_backend_bytes == 8 * 2**30
    assert spec.pvc_retention_policy.when_deleted == "Delete"
    assert spec.pod_disruption_budget.enabled is False


def test_the_network_policy_is_on_by_default_with_namespace_wide_clients() -> None:
    spec = parse_spec({})
    assert spec.network_policy.enabled is True
    assert spec.network_policy.clients_from is None
    assert spec.network_policy.metrics_from is None
    peers = [{"namespaceSelector": {"matchLabels": {"team": "apps"}}}]
    spec = parse_spec({"networkPolicy": {"clientsFrom": peers, "metricsFrom": []}})
    assert spec.network_policy.clients_from == peers
    assert spec.network_policy.metrics_from == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"replicas": 0}, "spec.replicas: Input should be greater than or equal to 1 (got 0)"),
        ({"replicas": 10}, "spec.replicas: Input should be less than or equal to 9 (got 10)"),
        ({"version": "3.6"}, "spec.version: String should match pattern"),
        ({"version": "v3.6.16"}, "spec.version: String should match pattern"),
        ({"storage": {"size": "0"}}, "spec.storage: storage.size must be positive"),
        ({"storage": {"size": "lots"}}, "spec.storage.size: String should match pattern"),
        (
            {"etcd": {"heartbeatIntervalMs": 300, "electionTimeoutMs": 1000}},
            "spec.etcd: etcd.electionTimeoutMs must be at least 5 times etcd.heartbeatIntervalMs",
        ),
        (
            {"etcd": {"autoCompactionMode": "revision"}},
            "etcd.autoCompactionRetention must be a number of revisions",
        ),
        ({"etcd": {"autoCompactionMode": "hourly"}}, "spec.etcd.autoCompactionMode: Input should"),
        (
            {"pvcRetentionPolicy": {"whenDeleted": "Keep"}},
            "spec.pvcRetentionPolicy.whenDeleted: Input should be 'Retain' or 'Delete'",
        ),
        (
            {"backup": {"schedule": "@daily"}},
            "spec.backup: unknown field; this version of etcd-operator does not support it",
        ),
    ],
)
def test_invalid_specs_name_the_field_and_the_problem(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(spec)
    assert message in str(caught.value)
    assert caught.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec({"replicas": 20, "version": "latest"})
    assert len(caught.value.problems) == 2


def test_revision_compaction_takes_a_revision_count() -> None:
    spec = parse_spec(
        {"etcd": {"autoCompactionMode": "revision", "autoCompactionRetention": "1000"}}
    )
    assert spec.etcd.auto_compaction_retention == "1000"


@given(
    heartbeat=st.integers(min_value=10, max_value=10_000),
    election=st.integers(min_value=50, max_value=50_000),
)
def test_election_timeout_rule_is_five_heartbeats(heartbeat: int, election: int) -> None:
    spec = {"etcd": {"heartbeatIntervalMs": heartbeat, "electionTimeoutMs": election}}
    if election >= 5 * heartbeat:
        assert parse_spec(spec).etcd.election_timeout_ms == election
    else:
        with pytest.raises(InvalidSpecError):
            parse_spec(spec)


def test_models_are_frozen() -> None:
    spec = parse_spec({})
    with pytest.raises(ValidationError):
        spec.replicas = 5  # type: ignore[misc]


def test_parse_cluster_reads_a_kopf_body_and_ignores_server_metadata() -> None:
    cluster = parse_cluster(
        {
            "apiVersion": API_VERSION,
            "kind": "EtcdCluster",
            "metadata": {
                "name": "demo",
                "namespace": "ns",
                "uid": "abc",
                "generation": 4,
                "resourceVersion": "77",
                "managedFields": [{"manager": "kubectl"}],
            },
            "spec": {"replicas": 5},
            "status": {"phase": "Running", "readyReplicas": 5},
        }
    )
    assert isinstance(cluster, EtcdCluster)
    assert (cluster.name, cluster.namespace, cluster.metadata.uid) == ("demo", "ns", "abc")
    assert cluster.spec.replicas == 5
    assert cluster.status is not None and cluster.status.phase is ClusterPhase.RUNNING
    assert cluster.api_version == API_VERSION


@pytest.mark.parametrize("name", ["Demo", "1demo", "de.mo", "x" * 51, "demo-"])
def test_cluster_names_must_fit_the_names_built_from_them(name: str) -> None:
    with pytest.raises(InvalidSpecError, match=r"metadata\.name"):
        parse_cluster({"metadata": {"name": name, "namespace": "ns"}})


def test_status_round_trips_through_its_wire_form() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = EtcdClusterStatus(
        observed_generation=3,
        phase=ClusterPhase.SCALING,
        conditions=[
            Condition(
                type="Available",
                status=ConditionStatus.TRUE,
                reason="QuorumHealthy",
                message="3/3 members healthy",
                last_transition_time=now,
                observed_generation=3,
            )
        ],
        replicas=3,
        ready_replicas=2,
        members=[
            MemberStatus(
                name="demo-0",
                id="8e9e05c52164694d",
                peer_url="http://demo-0.demo.ns.svc.cluster.local:2380",
                client_url="http://demo-0.demo.ns.svc.cluster.local:2379",
                healthy=True,
                version="3.6.16",
                db_size=20480,
            )
        ],
        leader="demo-0",
        cluster_id="cdf818194e3a8c32",
        current_version="3.6.16",
        client_endpoint="http://demo-client.ns.svc:2379",
        last_operation=LastOperation(
            type="AddLearner",
            state=OperationState.PROCESSING,
            description="Adding demo-3 as a learner",
            time=now,
        ),
    )
    wire = status.to_k8s()
    assert wire["members"][0]["peerURL"].endswith(":2380")
    assert wire["clusterID"] == "cdf818194e3a8c32"
    assert wire["lastOperation"]["state"] == "Processing"
    assert wire["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert parse_status(wire) == status


def test_status_written_by_another_operator_version_still_parses() -> None:
    status = parse_status({"phase": "Running", "someFutureField": 1, "members": [{"name": "a-0"}]})
    assert status.phase is ClusterPhase.RUNNING
    assert parse_status(None) == EtcdClusterStatus()


def test_spec_to_k8s_and_back_is_identity() -> None:
    spec = parse_spec({"replicas": 5, "podTemplate": {"labels": {"team": "db"}}})
    assert parse_spec(spec.to_k8s()) == spec
    assert EtcdClusterSpec().to_k8s()["replicas"] == 3


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("1Gi", 2**30), ("500m", 0.5), ("1k", 1000), ("1e3", 1000), ("2E", 2 * 10**18), (3, 3)],
)
def test_quantities_parse_like_kubernetes(quantity: str | int, value: float) -> None:
    assert parse_quantity(quantity) == pytest.approx(value)
