"""Generated files are checked in; they must equal what the generators produce."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etcd_operator.cli import main
from etcd_operator.manifests import IMAGE, deployment, generated_files

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(generated_files(), key=str), ids=str)
def test_checked_in_file_matches_the_generator(path: Path) -> None:
    checked_in = REPO / path
    assert checked_in.exists(), f"{path} is missing: run `make manifests`"
    assert checked_in.read_text() == generated_files()[path], (
        f"{path} is out of date: run `make manifests`"
    )


def test_manifests_command_writes_and_checks(tmp_path: Path) -> None:
    out, docs, chart = tmp_path / "deploy", tmp_path / "api.md", tmp_path / "chart"
    args = ["manifests", "--output", str(out), "--docs", str(docs), "--chart", str(chart)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert (out / "crds" / "etcd.operator.io_etcdclusters.yaml").exists()
    assert docs.read_text().startswith("<!-- Generated")
    assert (chart / "crds" / "etcd.operator.io_etcdclusters.yaml").exists()
    assert (chart / "templates" / "_rbac-rules.tpl").exists()
    assert main([*args, "--check"]) == 0


def test_every_generated_yaml_file_parses() -> None:
    for path, content in generated_files().items():
        if path.suffix == ".yaml":
            documents = [d for d in yaml.safe_load_all(content) if d]
            assert documents and all("apiVersion" in d and "kind" in d for d in documents)


def test_deployment_runs_the_operator_image() -> None:
    spec = deployment().to_dict()["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE == "ghcr.io/etcd-operator/etcd-operator:0.1.0"
    assert container["command"] == ["etcd-operator"] and container["args"][0] == "run"
    # Several replicas are safe: only the leader-election Lease's holder acts.
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert "--leader-elect" in container["args"] and "--standalone" not in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {p["name"] for p in container["ports"]} == {"health", "metrics"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_namespaced_install_grants_roles_only_in_the_watched_namespaces(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["manifests", "--namespaced", "team-a,team-b"]) == 0
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    by_kind: dict[str, list[dict[str, object]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    # A Role in each watched namespace, and one for the leader-election Lease in its own.
    assert [d["metadata"]["namespace"] for d in by_kind["Role"]] == [
        "team-a",
        "team-b",
        "etcd-operator-system",
    ]
    assert [d["metadata"]["namespace"] for d in by_kind["RoleBinding"]] == [
        "team-a",
        "team-b",
        "etcd-operator-system",
    ]
    [cluster_role] = by_kind["ClusterRole"]
    assert cluster_role["rules"] == [
        {"verbs": ["get"], "apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"]}
    ]
    [container] = by_kind["Deployment"][0]["spec"]["template"]["spec"]["containers"]
    assert container["args"][-4:] == ["--namespace", "team-a", "--namespace", "team-b"]
    subjects = {
        (s["name"], s["namespace"])
        for d in by_kind["RoleBinding"] + by_kind["ClusterRoleBinding"]
        for s in d["subjects"]
    }
    assert subjects == {("etcd-operator", "etcd-operator-system")}


def test_a_namespaced_install_can_run_the_operator_in_an_existing_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["manifests", "--namespaced", "a", "--operator-namespace", "ops", "--name", "etcd-a"]
    assert main(args) == 0
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert "Namespace" not in {d["kind"] for d in documents}  # the user's own namespace
    [account] = [d for d in documents if d["kind"] == "ServiceAccount"]
    assert account["metadata"] == {**account["metadata"], "name": "etcd-a", "namespace": "ops"}
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "ClusterRole"} == {
        "etcd-a-cluster-scoped"
    }


def test_the_namespaced_install_needs_a_namespace() -> None:
    with pytest.raises(SystemExit):
        main(["manifests", "--namespaced", ","])
