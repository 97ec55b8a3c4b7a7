"""The fence: a replica that does not hold the Lease writes nothing in a round."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from etcd_operator.handlers import etcdcluster
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient


def _body() -> dict[str, object]:
    cluster = make_cluster(replicas=3)
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": cluster.name, "namespace": cluster.namespace, "uid": "uid-1"},
        "spec": {"replicas": 3},
    }


@pytest.mark.parametrize("open_checks", [0, 1])
async def test_a_fenced_round_applies_no_step_and_writes_nothing_after_the_fence(
    monkeypatch: pytest.MonkeyPatch, open_checks: int
) -> None:
    events: list[object] = []
    monkeypatch.setattr(etcdcluster.kopf, "event", lambda *a, **k: events.append(k))
    kube = RecordingClient(_body())
    answers: Iterator[bool] = iter([True] * open_checks + [False] * 10)
    await etcdcluster.reconcile_once(
        kube,  # type: ignore[arg-type]
        etcdcluster.ClusterLoop(),
        "ns",
        "demo",
        cluster_domain=DEFAULT_CLUSTER_DOMAIN,
        fence=lambda: next(answers),
    )
    # The step (bootstrapping: creating pods) and the status are never written.
    assert ("", "pods", "create") not in kube.calls
    assert not any(res.endswith("/status") for _, res, _ in kube.writes)
    if open_checks == 0:  # lost before any write: nothing at all
        assert not kube.writes and not events


async def test_an_open_fence_applies_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(etcdcluster.kopf, "event", lambda *a, **k: None)
    kube = RecordingClient(_body())
    await etcdcluster.reconcile_once(
        kube,  # type: ignore[arg-type]
        etcdcluster.ClusterLoop(),
        "ns",
        "demo",
        cluster_domain=DEFAULT_CLUSTER_DOMAIN,
        fence=lambda: True,
    )
    assert ("", "pods", "create") in kube.calls
