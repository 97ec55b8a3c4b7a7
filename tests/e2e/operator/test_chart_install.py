"""The chart and the plain manifest install into a real cluster, and the operator runs from the
chart as a pod under exactly the chart's RBAC (its ServiceAccount's token, nothing else) and
reconciles an etcd cluster."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from lightkube import ALL_NS, AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from etcd_operator.kube import EtcdClusterResource
from harness import chart
from harness.clusters import create_cluster, delete_clusters, scratch_namespace, wait_ready
from harness.operator_process import OPERATOR_IMAGE, OperatorProcess
from localcluster import extras
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

TOO_MANY_REQUESTS = 429
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest_asyncio.fixture
async def served(kube: AsyncClient, crds: None) -> None:
    """Until EtcdClusters can be listed: on a just-started apiserver the new CRD's storage
    answers 429 (re)initializing for a few seconds after it is Established."""
    deadline = time.monotonic() + 60
    while True:
        try:
            _ = [c async for c in kube.list(EtcdClusterResource, namespace=ALL_NS)]
            return
        except ApiError as e:
            if e.status.code != TOO_MANY_REQUESTS or time.monotonic() > deadline:
                raise
        await asyncio.sleep(1)


def _kubectl(localcluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(localcluster.binaries.kubectl), "--kubeconfig", str(localcluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def _pods_report(localcluster: LocalCluster, namespace: str) -> str:
    """The namespace's pods, their Events and every container's log (the previous run's too)."""
    base = [str(localcluster.binaries.kubectl), "--kubeconfig", str(localcluster.kubeconfig)]
    report = []
    for args in (
        ["get", "pods", "-o", "wide", "-n", namespace],
        ["describe", "pods", "-n", namespace],
        ["logs", "-n", namespace, "-l", "app.kubernetes.io/name=etcd-operator", "--tail=200"],
        ["logs", "-n", namespace, "-l", "app.kubernetes.io/name=etcd-operator", "--previous"],
    ):
        got = subprocess.run([*base, *args], capture_output=True, text=True, check=False)
        report.append(f"$ kubectl {' '.join(args)}\n{got.stdout}{got.stderr}")
    return "\n".join(report)


def _dry_run(localcluster: LocalCluster, manifest: str) -> None:
    _kubectl(
        localcluster,
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=chart-e2e",
        "-f",
        "-",
        stdin=manifest,
    )


def _helm(localcluster: LocalCluster, *args: str) -> str:
    result = chart.helm(*args, "--kubeconfig", str(localcluster.kubeconfig), check=False)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


async def test_chart_value_sets_pass_server_side_dry_run(
    localcluster: LocalCluster, kube: AsyncClient, served: None
) -> None:
    """The apiserver accepts every object the chart renders (schema, RBAC escalation
    checks, PDB, priority class), for the value sets that need no third-party CRDs."""
    async with (
        scratch_namespace(kube, "chart", RESTRICTED) as home,
        scratch_namespace(kube, "watched", RESTRICTED) as watched,
    ):
        value_sets: list[dict[str, Any]] = [
            {},
            {"watchNamespaces": [watched]},
            {
                "replicas": 2,
                "leaderElection": {"enabled": True},
                "podDisruptionBudget": {"enabled": True},
                "priorityClassName": "system-cluster-critical",
                "metrics": {"enabled": True},
                "grafanaDashboard": {"enabled": True},
            },
        ]
        for values in value_sets:
            rendered = chart.render(values, release="dry", namespace=home)
            assert chart.documents(rendered)
            _dry_run(localcluster, rendered)


async def test_plain_manifest_applies(localcluster: LocalCluster) -> None:
    """deploy/etcd-operator.yaml as a user would apply it: the CRDs and the cluster-scoped
    objects for real (the CRDs are the ones every test uses anyway), the rest dry-run."""
    documents = chart.documents(chart.PLAIN_MANIFEST.read_text())
    cluster_scoped = {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}
    # The harness's operator identity owns objects of the same names; take them over.
    _kubectl(
        localcluster,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=chart-e2e",
        "-f",
        "-",
        stdin=yaml.safe_dump_all([d for d in documents if d["kind"] in cluster_scoped]),
    )
    rest = [d for d in documents if d["kind"] not in cluster_scoped]
    assert {d["kind"] for d in rest} >= {"ServiceAccount", "Deployment"}
    _dry_run(localcluster, yaml.safe_dump_all(rest))


def _no_operator_watches_everything(localcluster: LocalCluster) -> None:
    """A cluster-wide operator (e.g. a detached demo one) would act on the test's cluster
    too, and the test would not show that the chart's operator did the work."""
    for record in extras.registered(localcluster.state):
        meta = record.meta
        if meta.get("kind") == "etcd-operator" and not meta.get("namespaces"):
            pytest.fail(f"an operator watching every namespace runs ({record.name}): stop it")


async def _wait_available(kube: AsyncClient, namespace: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment = await kube.get(Deployment, name, namespace=namespace)
        status = deployment.status
        if status and (status.availableReplicas or 0) >= 1:
            return
        await asyncio.sleep(1)
    pods = [p async for p in kube.list(Pod, namespace=namespace)]
    raise AssertionError(f"{name} not available: {[p.status for p in pods]}")


async def test_operator_from_the_chart_reconciles_a_cluster_under_the_charts_rbac(
    localcluster: LocalCluster,
    kube: AsyncClient,
    served: None,
    tmp_path: Path,
    operator: OperatorProcess,
) -> None:
    # The suite's cluster-wide operator would act on the test's cluster too: it stands aside.
    operator.stop()
    try:
        await _install_and_reconcile(localcluster, kube, tmp_path)
    finally:
        operator.start()


async def _install_and_reconcile(
    localcluster: LocalCluster, kube: AsyncClient, tmp_path: Path
) -> None:
    _no_operator_watches_everything(localcluster)
    async with (
        scratch_namespace(kube, "chart", RESTRICTED) as home,
        scratch_namespace(kube, "watched", RESTRICTED) as watched,
    ):
        release = "eo"
        values = tmp_path / "values.yaml"
        repository, _, tag = OPERATOR_IMAGE.rpartition(":")
        values.write_text(
            yaml.safe_dump(
                {"watchNamespaces": [watched], "image": {"repository": repository, "tag": tag}}
            )
        )
        installed = chart.helm(
            "install",
            release,
            str(chart.CHART),
            "--namespace",
            home,
            "-f",
            str(values),
            "--wait",
            "--timeout",
            "3m",
            "--kubeconfig",
            str(localcluster.kubeconfig),
            check=False,
        )
        # What the pods said goes with the namespace: keep it in the failure.
        assert installed.returncode == 0, (
            f"helm install:\n{installed.stdout}{installed.stderr}\n"
            + _pods_report(localcluster, home)
        )
        try:
            name = f"{release}-etcd-operator"
            await _wait_available(kube, home, name, timeout=120)
            # The chart's default: two replicas under leader election, one acting.
            pods = [p async for p in kube.list(Pod, namespace=home)]
            assert len(pods) == 2
            assert all(p.spec is not None and p.spec.serviceAccountName == name for p in pods)
            await create_cluster(kube, watched, "db", {"replicas": 3})
            await wait_ready(kube, watched, "db", 3, timeout=300)
            logs = {}
            for pod in pods:
                assert pod.metadata is not None and pod.metadata.name is not None
                pod_name = pod.metadata.name
                # It ran all along (a crash loop could look available between restarts).
                got = await kube.get(Pod, pod_name, namespace=home)
                statuses = (got.status.containerStatuses if got.status else None) or []
                assert [s.restartCount for s in statuses] == [0]
                logs[pod_name] = _kubectl(localcluster, "logs", "-n", home, pod_name)
            # An operator pod did it (its log names the cluster), the other stood by.
            assert sum("now holds the Lease" in log for log in logs.values()) == 1
            assert any("db" in log for log in logs.values())
        finally:
            # The clusters go while the operator still runs (it releases their finalizers).
            await delete_clusters(kube, watched)
            _helm(localcluster, "uninstall", release, "--namespace", home, "--wait")
