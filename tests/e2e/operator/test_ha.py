"""Two operator replicas with leader election against the real apiserver: exactly one acts,
the standby takes over when the leader is killed, the metrics endpoint exports the cluster's
series, and liveness fails while the apiserver is frozen (the watch stalls)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from lightkube import AsyncClient
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import PatchType
from prometheus_client.parser import text_string_to_metric_families

from etcd_operator.kube import EtcdClusterResource
from harness.chart import NAMESPACE as OPERATOR_NAMESPACE
from harness.clusters import (
    create_ready_cluster,
    delete_clusters,
    eventually,
    scratch_namespace,
    wait_ready,
)
from harness.operator_process import OperatorProcess
from harness.waits import settled
from localcluster.cluster import LocalCluster
from localcluster.controlplane import component_pid

pytestmark = pytest.mark.e2e

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
LEASE_DURATION = 6.0
TIMING = ["--lease-duration", "6", "--renew-deadline", "4", "--retry-period", "1"]
APPLYING = "] applying "  # kopf prefixes "[namespace/name]"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


Samples = dict[tuple[str, str | None, str | None], float]


def _samples(port: int) -> Samples:
    """An operator's metrics, parsed, by (name, namespace label, name label)."""
    status, text = _get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        raise OSError(f"/metrics answered {status}: {text[:200]}")
    return {
        (s.name, s.labels.get("namespace"), s.labels.get("name")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _unexported(samples: Samples, ns: str, name: str) -> list[str]:
    """What the leader of a ready 1-member cluster must export and does not (yet)."""
    missing = [
        series
        for series in (
            "etcd_operator_cluster_members_desired",
            "etcd_operator_cluster_members_ready",
            "etcd_operator_cluster_members_voting",
            "etcd_operator_cluster_members_learner",
            "etcd_operator_cluster_leader_changes_total",
            "etcd_operator_cluster_db_size_bytes",
            "etcd_operator_cluster_db_size_in_use_bytes",
            "etcd_operator_cluster_db_quota_bytes",
            "etcd_operator_cluster_last_successful_round_timestamp_seconds",
            # Errors by step kind, exported from 0 per step.
            "etcd_operator_reconcile_errors_total",
        )
        if (series, ns, name) not in samples
    ]
    wrong = [
        f"{series} = {samples.get((series, ns, name))}, not {want}"
        for series, want in (
            ("etcd_operator_cluster_members_desired", 1),
            ("etcd_operator_cluster_members_voting", 1),
        )
        if (series, ns, name) in samples and samples[(series, ns, name)] != want
    ]
    if samples.get(("etcd_operator_cluster_db_size_bytes", ns, name), 1) <= 0:
        wrong.append("etcd_operator_cluster_db_size_bytes is 0")
    if samples.get(("etcd_operator_leader", None, None)) != 1:
        wrong.append(f"etcd_operator_leader = {samples.get(('etcd_operator_leader', None, None))}")
    # Rounds and their duration by step kind.
    missing += [
        n
        for n in (
            "etcd_operator_reconcile_rounds_total",
            "etcd_operator_reconcile_duration_seconds_count",
        )
        if not any(got == n for got, _, _ in samples)
    ]
    return [f"missing {m}" for m in missing] + wrong


@dataclass
class Replica:
    name: str
    process: OperatorProcess
    health: int
    metrics: int

    def status(self, path: str) -> int:
        return _get(f"http://127.0.0.1:{self.health}{path}")[0]

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")


def _replica(cluster: LocalCluster, name: str, namespace: str, *more: str) -> Replica:
    health, metrics = _free_port(), _free_port()
    args = [
        "--leader-elect",
        "--lease-name",
        f"ha-{namespace}",
        "--lease-namespace",
        OPERATOR_NAMESPACE,
        *TIMING,
        "--health-port",
        str(health),
        "--metrics-port",
        str(metrics),
        *more,
    ]
    process = OperatorProcess(
        cluster.state,
        name,
        namespaces=(namespace,),
        extra_args=args,
        extra_env={"ETCD_OPERATOR_IDENTITY": name},
    )
    if process.log_path.exists():
        process.log_path.unlink()  # each test reads only its own run's lines
    return Replica(name, process, health, metrics)


@pytest.fixture
def no_shared_operator(operator: OperatorProcess) -> Iterator[None]:
    """The session's cluster-wide operator would act on the test's namespace too."""
    operator.stop()
    yield
    operator.start()


@pytest_asyncio.fixture
async def ha_namespace(kube: AsyncClient, no_shared_operator: None) -> AsyncIterator[str]:
    async with scratch_namespace(kube, "ha", RESTRICTED) as name:
        yield name


async def _until(check: object, timeout: float, what: str) -> None:
    async def probe() -> bool:
        return bool(check() if callable(check) else check)

    await eventually(probe, timeout, what, interval=0.2)


async def test_two_replicas_one_acts_the_standby_takes_over_and_metrics_are_exported(
    kube: AsyncClient, localcluster: LocalCluster, ha_namespace: str
) -> None:
    ns = ha_namespace
    a = _replica(localcluster, "ha-a", ns)
    b = _replica(localcluster, "ha-b", ns)
    a.process.start()
    try:
        await _until(lambda: a.status("/leaderz") == 200, 60, "ha-a to lead")
        b.process.start()
        await _until(lambda: b.status("/readyz") == 200, 60, "ha-b ready as a standby")
        assert b.status("/leaderz") == 503

        await create_ready_cluster(kube, ns, "ha", {"replicas": 1}, timeout=180)
        lease = await kube.get(Lease, f"ha-{ns}", namespace=OPERATOR_NAMESPACE)
        assert lease.spec is not None and (lease.spec.holderIdentity or "").startswith("ha-a_")
        assert APPLYING in a.log()
        assert APPLYING not in b.log()  # the standby applied nothing

        # The metrics endpoint, parsed: the cluster's series with their values. A round records
        # them after writing its status, so the scrape may lag the status wait_ready saw.
        await settled(
            lambda: asyncio.to_thread(_samples, a.metrics),
            lambda samples: not _unexported(samples, ns, "ha"),
            30,
            "the leader's metrics to export the ready cluster",
            describe=lambda samples: _unexported(samples, ns, "ha"),
        )
        await settled(
            lambda: asyncio.to_thread(_get, f"http://127.0.0.1:{b.metrics}/metrics"),
            lambda got: got[0] == 200 and "etcd_operator_leader 0.0" in got[1],
            30,
            "the standby to export etcd_operator_leader 0",
            describe=lambda got: (got[0], [x for x in got[1].splitlines() if "_leader " in x]),
        )
        await _member_metrics_are_served_through_the_headless_service(kube, ns, "ha")

        # Kill the leader; the standby takes the Lease and scales the cluster, asked through
        # the scale subresource (what `kubectl scale etcdcluster ha --replicas=2` does).
        a.process.kill()
        killed = time.monotonic()
        await kube.patch(
            EtcdClusterResource.Scale,
            "ha",
            {"spec": {"replicas": 2}},
            namespace=ns,
            patch_type=PatchType.MERGE,
        )
        await _until(lambda: b.status("/leaderz") == 200, 60, "ha-b to take over")
        took_over = time.monotonic() - killed
        assert took_over >= LEASE_DURATION - 1.5  # a killed leader's Lease runs out first
        await wait_ready(kube, ns, "ha", 2, timeout=240)
        scale = await kube.get(EtcdClusterResource.Scale, "ha", namespace=ns)
        assert scale.spec is not None and scale.spec.replicas == 2
        assert scale.status is not None and scale.status.replicas == 2
        assert "app.kubernetes.io/instance=ha" in (scale.status.selector or "")
        log = b.log()
        # Every step ha-b applied came after it took the Lease.
        assert APPLYING in log
        assert log.index("now holds the Lease") < log.index(APPLYING)
    finally:
        a.process.stop()
        b.process.stop()
        # Let a plain operator release the finalizers (the shared one restarts after).
        cleanup = _replica(localcluster, "ha-cleanup", ns)
        cleanup.process.start()
        try:
            await delete_clusters(kube, ns)
        finally:
            cleanup.process.stop()


async def _member_metrics_are_served_through_the_headless_service(
    kube: AsyncClient, namespace: str, cluster: str
) -> None:
    """What a ServiceMonitor on the `metrics` port scrapes: every endpoint of the cluster's
    headless Service serves etcd's own metrics (parsed), with the series the dashboard and
    alerts use."""

    async def endpoints() -> list[tuple[str, int]]:
        slices = kube.list(
            EndpointSlice,
            namespace=namespace,
            labels={"kubernetes.io/service-name": cluster},
        )
        found = []
        async for piece in slices:
            ports = [p.port for p in piece.ports or [] if p.name == "metrics" and p.port]
            found += [
                (a, port) for e in piece.endpoints or [] for a in e.addresses for port in ports
            ]
        return found

    found = await eventually(endpoints, 60, "the headless Service's metrics endpoints")
    assert len(found) == 1  # one member
    for address, port in found:
        status, text = _get(f"http://{address}:{port}/metrics")
        assert status == 200, text
        samples = {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples["etcd_server_has_leader"] == 1
        assert samples["etcd_mvcc_db_total_size_in_bytes"] > 0
        assert samples["etcd_server_quota_backend_bytes"] > 0
        assert "etcd_server_leader_changes_seen_total" in samples
        assert "etcd_disk_wal_fsync_duration_seconds_bucket" in samples


async def test_liveness_fails_while_the_apiserver_is_frozen_and_recovers(
    kube: AsyncClient, localcluster: LocalCluster, ha_namespace: str
) -> None:
    ns = ha_namespace
    op = _replica(localcluster, "ha-live", ns, "--watch-stall-seconds", "8")
    op.process.start()
    apiserver = component_pid(localcluster.state, "kube-apiserver")
    assert apiserver is not None
    try:
        await _until(lambda: op.status("/leaderz") == 200, 60, "the operator to lead")
        await _until(lambda: op.status("/healthz") == 200, 30, "the operator live")
        os.kill(apiserver, signal.SIGSTOP)  # watches and lists hang, as on a dead link
        try:
            # Liveness fails, and the fence closes too: a leader that cannot renew stops acting
            # (each on its own clock: wait for both, while the apiserver stays frozen).
            deadline = time.monotonic() + 40
            failed = fenced = False
            while time.monotonic() < deadline and not (failed and fenced):
                await asyncio.sleep(1)
                failed = failed or op.status("/healthz") == 503
                fenced = fenced or op.status("/leaderz") == 503
        finally:
            os.kill(apiserver, signal.SIGCONT)
        assert failed, "liveness never failed while the apiserver was frozen"
        assert fenced, "the leader kept leading while it could not renew"
        await _until(lambda: op.status("/healthz") == 200, 90, "liveness to recover")
    finally:
        op.process.stop()
