"""The chart renders and lints with the value sets a platform team would use, and what it
renders is what the operator's code declares: its RBAC from `rbac.needs`, its CRDs from the
API models, the plain manifest from the chart itself."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from etcd_operator import __version__, rbac
from etcd_operator.leader import IDENTITY_ENV
from etcd_operator.naming import CLUSTER_DOMAIN_ENV, OPERATOR_POD_LABELS_ENV, POD_NAMESPACE_ENV
from etcd_operator.resources.pod import DEFAULT_OPERATOR_IMAGE
from harness import chart

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "ha": {
        "replicas": 3,
        "leaderElection": {"enabled": True},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        "priorityClassName": "system-cluster-critical",
    },
    "observed": {
        "logFormat": "json",
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
    "members-monitored": {
        "watchNamespaces": ["team-a"],
        "members": {
            "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kp"}}
        },
    },
    "pinned-image": {
        "image": {"repository": "registry.example/etcd-operator", "digest": "sha256:" + "a" * 64},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
    },
}


def _kinds(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    return by_kind


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = _kinds(objects)["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _rules(models: list[Any]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in models]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_chart_lints_with_each_value_set(name: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUE_SETS[name]))
    result = chart.helm("lint", "--strict", str(chart.CHART), "-f", str(values), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_install_is_cluster_wide_with_exactly_the_declared_rules() -> None:
    objects = chart.documents(chart.render())
    kinds = _kinds(objects)
    assert sorted(kinds) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    (role,) = kinds["ClusterRole"]
    assert role["rules"] == _rules(rbac.cluster_rules())
    (binding,) = kinds["ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": chart.RELEASE, "namespace": chart.NAMESPACE}
    ]
    container = _container(objects)
    assert container["image"] == f"ghcr.io/etcd-operator/etcd-operator:{__version__}"
    # The image member pods fall back to when the operator is not told its own.
    assert container["image"] == DEFAULT_OPERATOR_IMAGE
    assert container["command"] == ["etcd-operator"]
    # Two replicas, one acting: the Lease's Role lives in the release namespace only.
    assert container["args"][:3] == ["run", "--leader-elect", f"--lease-name={chart.RELEASE}"]
    (lease_role,) = kinds["Role"]
    assert lease_role["metadata"]["namespace"] == chart.NAMESPACE
    assert lease_role["rules"] == _rules(rbac.operator_namespace_rules())
    (deployment,) = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {p["name"] for p in container["ports"]} == {"health", "metrics"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_namespaced_install_has_a_role_per_watched_namespace_only() -> None:
    objects = chart.documents(chart.render(VALUE_SETS["namespaced"]))
    kinds = _kinds(objects)
    lease = f"{chart.RELEASE}-leader-election"
    roles = [r for r in kinds["Role"] if r["metadata"]["name"] != lease]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(r["rules"] == _rules(rbac.namespaced_rules()) for r in roles)
    bindings = [b for b in kinds["RoleBinding"] if b["metadata"]["name"] != lease]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    cluster_scoped = _rules(rbac.cluster_scoped_rules())
    assert [r["rules"] for r in kinds.get("ClusterRole", [])] == (
        [cluster_scoped] if cluster_scoped else []
    )
    args = _container(objects)["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_ha_values_run_replicas_under_leader_election_with_a_pdb() -> None:
    objects = chart.documents(chart.render(VALUE_SETS["ha"]))
    kinds = _kinds(objects)
    (deployment,) = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "--leader-elect" in _container(objects)["args"]
    assert "--standalone" not in _container(objects)["args"]
    (pdb,) = kinds["PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical"


def test_observability_values_add_metrics_service_monitor_rules_and_dashboard() -> None:
    objects = chart.documents(chart.render(VALUE_SETS["observed"]))
    kinds = _kinds(objects)
    assert {"Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds)
    args = _container(objects)["args"]
    assert "--log-format=json" in args and "--metrics-port=9090" in args
    (monitor,) = kinds["ServiceMonitor"]
    (service,) = kinds["Service"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    # The ServiceMonitor must select the metrics Service by labels the Service carries.
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_pinned_image_by_digest_reaches_members_too() -> None:
    container = _container(chart.documents(chart.render(VALUE_SETS["pinned-image"])))
    image = "registry.example/etcd-operator@sha256:" + "a" * 64
    assert container["image"] == image
    # Member pods run their data-directory check in the operator's image.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ETCD_OPERATOR_IMAGE"] == image
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 2, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled"),
        (
            {
                "replicas": 1,
                "leaderElection": {"enabled": True},
                "podDisruptionBudget": {"enabled": True},
            },
            "minAvailable must be below replicas",
        ),
        (
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "needs metrics.enabled",
        ),
    ],
)
def test_unsafe_values_are_refused(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        chart.render(values)
    assert complaint in failed.value.stderr


def test_deployment_env_matches_what_the_operator_reads() -> None:
    """The chart sets the variables the operator reads (by their names in the code)."""
    rendered = _container(chart.documents(chart.render()))
    assert {e["name"] for e in rendered["env"]} == {
        IDENTITY_ENV,
        POD_NAMESPACE_ENV,
        OPERATOR_POD_LABELS_ENV,
        "ETCD_OPERATOR_IMAGE",  # handlers.apply
        CLUSTER_DOMAIN_ENV,
        "PYTHONDONTWRITEBYTECODE",
        "USER",  # kopf's getpass at start, for a uid without a passwd entry
    }
    labels = next(e["value"] for e in rendered["env"] if e["name"] == "ETCD_OPERATOR_POD_LABELS")
    pairs = dict(pair.split("=", 1) for pair in labels.split(","))
    (deployment,) = _kinds(chart.documents(chart.render()))["Deployment"]
    assert pairs.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_chart_versions_follow_the_operator() -> None:
    meta = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    assert meta["appVersion"] == __version__


def test_plain_manifest_is_the_chart_rendered() -> None:
    assert chart.PLAIN_MANIFEST.exists(), "run `make manifests`"
    assert chart.PLAIN_MANIFEST.read_text() == chart.plain_manifest(), (
        "deploy/etcd-operator.yaml is out of date: run `make manifests`"
    )
    kinds = _kinds(chart.documents(chart.PLAIN_MANIFEST.read_text()))
    assert {"CustomResourceDefinition", "Namespace", "ServiceAccount", "Deployment"} <= set(kinds)
