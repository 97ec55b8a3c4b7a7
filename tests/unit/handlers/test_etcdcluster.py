"""The reconcile shell: what one round writes, and what wakes the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.core_v1 import Pod, Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.policy_v1 import PodDisruptionBudget

from etcd_operator import pacing
from etcd_operator.api import parse_cluster
from etcd_operator.handlers import etcdcluster
from etcd_operator.handlers.objects import desired_objects, sync_cluster_objects
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.planner import Reason
from etcd_operator.planner.recovery import LOST_FOR_GOOD
from etcd_operator.planner.steps import degraded
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient


def _body(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": generation},
        "spec": spec,
    }


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def event(_body: Any, *, type: str, reason: str, message: str) -> None:
        posted.append((type, reason, message))

    monkeypatch.setattr(etcdcluster.kopf, "event", event)
    return posted


async def _round(
    kube: RecordingClient,
    loop: etcdcluster.ClusterLoop | None = None,
    domain: str = DEFAULT_CLUSTER_DOMAIN,
) -> float:
    return await etcdcluster.reconcile_once(
        kube,  # type: ignore[arg-type]
        loop or etcdcluster.ClusterLoop(),
        "ns",
        "demo",
        cluster_domain=domain,
    )


def _forbidden(obj: Any) -> Exception | None:
    if not isinstance(obj, Service):
        return None
    return ApiError(status=Status(code=403, message="services is forbidden", reason="Forbidden"))


async def test_a_paused_cluster_gets_no_writes_and_one_event(
    events: list[tuple[str, str, str]],
) -> None:
    kube = RecordingClient(_body(replicas=3, paused=True))
    loop = etcdcluster.ClusterLoop()
    assert await _round(kube, loop) == pacing.PAUSED
    assert await _round(kube, loop) == pacing.PAUSED
    assert kube.writes == set()
    assert [reason for _, reason, _ in events] == ["Paused"]


async def test_a_failed_service_apply_does_not_stop_the_round(
    events: list[tuple[str, str, str]],
) -> None:
    kube = RecordingClient(_body(replicas=3), fail_apply=_forbidden)
    delay = await _round(kube)
    created = [obj for verb, obj in kube.written if verb == "create" and isinstance(obj, Pod)]
    assert len(created) == 3, "the bootstrap still ran"
    status = next(patch["status"] for verb, patch in kube.written if verb == "patch")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "ObjectApplyFailed"
    assert "services is forbidden" in degraded["message"]
    assert ("Warning", "ObjectApplyFailed") in {(t, r) for t, r, _ in events}
    assert delay == pacing.backoff(1)


async def test_the_cluster_domain_names_the_members(events: list[tuple[str, str, str]]) -> None:
    kube = RecordingClient(_body(replicas=3))
    await _round(kube, domain="corp.example")
    pods = [obj for verb, obj in kube.written if verb == "create" and isinstance(obj, Pod)]
    args = pods[0].spec.containers[0].args  # type: ignore[union-attr]
    assert "--initial-advertise-peer-urls=http://demo-0.demo.ns.svc.corp.example:2380" in args
    assert "--advertise-client-urls=http://demo-0.demo.ns.svc.corp.example:2379" in args
    assert all(".svc.cluster.local" not in a for a in args)


async def test_objects_in_sync_are_not_applied_and_a_changed_one_is() -> None:
    cluster = make_cluster(replicas=3)
    live = desired_objects(cluster, 3)
    kube = RecordingClient(
        {},
        listed={
            Service: [o for o in live if isinstance(o, Service)],
            PodDisruptionBudget: [o for o in live if isinstance(o, PodDisruptionBudget)],
            NetworkPolicy: [o for o in live if isinstance(o, NetworkPolicy)],
        },
    )
    assert await sync_cluster_objects(kube, cluster, 3) is None  # type: ignore[arg-type]
    assert kube.written == []
    assert await sync_cluster_objects(kube, cluster, 5) is None  # type: ignore[arg-type]
    assert [type(obj).__name__ for _, obj in kube.written] == ["PodDisruptionBudget"]


async def test_a_failed_apply_leaves_the_other_objects_applied() -> None:
    kube = RecordingClient({}, fail_apply=_forbidden)
    error = await sync_cluster_objects(kube, make_cluster(), 3)  # type: ignore[arg-type]
    assert error is not None and error.count("services is forbidden") == 2
    assert [type(obj).__name__ for _, obj in kube.written] == [
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]


async def test_a_disabled_network_policy_is_deleted_once_and_not_applied() -> None:
    enabled = desired_objects(make_cluster(), 3)
    policy = next(o for o in enabled if isinstance(o, NetworkPolicy))
    cluster = make_cluster(networkPolicy={"enabled": False})
    kube = RecordingClient({}, listed={NetworkPolicy: [policy]})
    assert await sync_cluster_objects(kube, cluster, 3) is None  # type: ignore[arg-type]
    assert ("delete", (NetworkPolicy, "demo")) in kube.written
    assert not any(isinstance(obj, NetworkPolicy) for verb, obj in kube.written if verb != "delete")
    gone = RecordingClient({})
    assert await sync_cluster_objects(gone, cluster, 3) is None  # type: ignore[arg-type]
    assert not any(verb == "delete" for verb, _ in gone.written)


async def test_a_bad_peer_is_reported_and_the_other_objects_still_apply() -> None:
    cluster = make_cluster(networkPolicy={"clientsFrom": [{"podSelectr": {}}]})
    kube = RecordingClient({})
    error = await sync_cluster_objects(kube, cluster, 3)  # type: ignore[arg-type]
    assert error is not None and "clientsFrom[0]: unknown field(s) podSelectr" in error
    assert [type(obj).__name__ for _, obj in kube.written] == [
        "Service",
        "Service",
        "PodDisruptionBudget",
    ]


async def test_the_operator_pod_from_its_env_is_let_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "ops")
    monkeypatch.setenv("ETCD_OPERATOR_POD_LABELS", "app=op, tier=ctl")
    kube = RecordingClient({})
    assert await sync_cluster_objects(kube, make_cluster(), 3) is None  # type: ignore[arg-type]
    policy = next(o for _, o in kube.written if isinstance(o, NetworkPolicy)).to_dict()
    client_rule = policy["spec"]["ingress"][1]
    assert client_rule["from"][-1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
        "podSelector": {"matchLabels": {"app": "op", "tier": "ctl"}},
    }


async def test_a_new_generation_or_a_deletion_wakes_the_loop_but_a_status_write_does_not() -> None:
    loop = etcdcluster.ClusterLoop(generation=3)
    etcdcluster._loops[("ns", "demo")] = loop
    try:
        await etcdcluster.cluster_changed(body=_body(generation=3), name="demo", namespace="ns")
        assert not loop.wake.is_set()
        await etcdcluster.cluster_changed(body=_body(generation=4), name="demo", namespace="ns")
        assert loop.wake.is_set()
        loop.wake.clear()
        deleting = _body(generation=3)
        deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        await etcdcluster.cluster_changed(body=deleting, name="demo", namespace="ns")
        assert loop.wake.is_set()
    finally:
        del etcdcluster._loops[("ns", "demo")]


class _NeverStopped:
    """kopf's DaemonStopped as a daemon sees it when kopf never stops it."""

    def __bool__(self) -> bool:
        return False

    async def wait(self) -> None:
        await asyncio.Event().wait()


class _Leader:
    def is_leader(self) -> bool:
        return True


class _GoneClient(RecordingClient):
    async def get(self, kind: Any, name: str, **_: Any) -> Any:
        self._record(kind, "get")
        raise ApiError(status=Status(code=404, message="not found", reason="NotFound"))


async def test_the_loop_of_a_cluster_that_is_gone_ends_instead_of_polling_a_404() -> None:
    kube = _GoneClient(_body())
    memo = kopf.Memo(kube=kube, leader=_Leader(), cluster_domain=DEFAULT_CLUSTER_DOMAIN)
    await asyncio.wait_for(
        etcdcluster.reconcile_forever(
            stopped=_NeverStopped(),  # type: ignore[arg-type]
            name="demo",
            namespace="ns",
            memo=memo,
        ),
        timeout=5,
    )
    assert ("ns", "demo") not in etcdcluster._loops


def _degraded_before(reason: str, message: str) -> Any:
    body = _body()
    body["status"] = {
        "conditions": [
            {
                "type": "Degraded",
                "status": "True",
                "reason": reason,
                "message": message,
                "lastTransitionTime": "2026-11-30T12:00:00Z",
            }
        ]
    }
    return parse_cluster(body)


def test_a_quorum_lost_for_good_is_news_though_no_answer_was_reported_before() -> None:
    """Pods starting: "no member answers" (QuorumLost); then member-init's verdict makes it
    lost for good, under the same reason: that verdict gets its own Warning, once."""
    generic = _degraded_before("QuorumLost", "no member answers; 1 pods exist")
    verdict = degraded(Reason.QUORUM_LOST, f"{LOST_FOR_GOOD} and no member survives with data")
    assert etcdcluster._newly_degraded(generic, verdict)
    assert not etcdcluster._newly_degraded(_degraded_before("QuorumLost", verdict.message), verdict)
    again = degraded(Reason.QUORUM_LOST, "no member answers; 1 pods exist")
    assert not etcdcluster._newly_degraded(generic, again)
    assert etcdcluster._newly_degraded(_degraded_before("ForeignVolume", "x"), again)
