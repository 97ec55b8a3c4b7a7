"""The downgrade steps in the shell: validate before enable, an enable whose answer was lost
counts as done, cancel goes to a member that knows the API, and etcd's refusal becomes a
Degraded condition with its reason and one Warning Event. The etcd calls themselves are
proven against real etcd in tests/integration/test_downgrade_real_etcd.py."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.etcd import DowngradeInProgress, DowngradeRefused, EndpointHealth, EtcdClient
from etcd_operator.handlers import etcdcluster
from etcd_operator.handlers.downgrade import cancel_downgrade, enable_downgrade
from etcd_operator.handlers.observe import World
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.planner import Decision, EnableDowngrade, Reason
from unit.support.kube import RecordingClient
from unit.support.observed import cluster

REFUSAL = "etcdserver: invalid downgrade target version"


class FakeEtcd:
    """Records the downgrade calls; answers as told."""

    def __init__(self, *, validate: Exception | None = None, enable: Exception | None = None):
        self.calls: list[tuple[str, str | None]] = []
        self._validate, self._enable = validate, enable

    async def downgrade_validate(self, version: str) -> str:
        self.calls.append(("validate", version))
        if self._validate is not None:
            raise self._validate
        return "3.6"

    async def downgrade_enable(self, version: str) -> str:
        self.calls.append(("enable", version))
        if self._enable is not None:
            raise self._enable
        return "3.6"

    async def downgrade_cancel(self, endpoint: str | None = None) -> str:
        self.calls.append(("cancel", endpoint))
        return "3.5"


def _client(fake: FakeEtcd) -> EtcdClient:
    return fake  # type: ignore[return-value]


async def test_enable_validates_first_and_a_lost_answer_counts_as_done() -> None:
    fake = FakeEtcd(enable=DowngradeInProgress("etcdserver: cluster has a downgrade job"))
    await enable_downgrade(_client(fake), "3.5.35")
    assert fake.calls == [("validate", "3.5.35"), ("enable", "3.5.35")]


async def test_a_refused_validate_enables_nothing() -> None:
    fake = FakeEtcd(validate=DowngradeRefused(REFUSAL))
    with pytest.raises(DowngradeRefused):
        await enable_downgrade(_client(fake), "3.4.20")
    assert fake.calls == [("validate", "3.4.20")]


async def test_cancel_goes_to_the_member_that_reported_the_downgrade() -> None:
    o = cluster(3)
    health = {0x101: EndpointHealth("http://etcd-1:2379", True, 0.01, None, None)}
    world = World(o, {}, None, health)
    fake = FakeEtcd()
    await cancel_downgrade(world, _client(fake), 0x101)
    assert fake.calls == [("cancel", "http://etcd-1:2379")]


async def test_etcds_refusal_is_reported_as_degraded_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    posted: list[tuple[str, str, str]] = []

    def event(_body: Any, *, type: str, reason: str, message: str) -> None:
        posted.append((type, reason, message))

    async def refuse(*_: Any, **__: Any) -> None:
        raise DowngradeRefused(REFUSAL, endpoint="http://demo-0:2379")

    enable = Decision(EnableDowngrade("3.5.35"), Reason.ENABLE_DOWNGRADE, "downgrading")
    monkeypatch.setattr(etcdcluster.kopf, "event", event)
    monkeypatch.setattr(etcdcluster, "decide", lambda _o: enable)
    monkeypatch.setattr(etcdcluster, "apply_step", refuse)
    kube = RecordingClient(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {"replicas": 3},
        }
    )
    await etcdcluster.reconcile_once(
        kube,  # type: ignore[arg-type]
        etcdcluster.ClusterLoop(),
        "ns",
        "demo",
        cluster_domain=DEFAULT_CLUSTER_DOMAIN,
    )
    status = next(patch["status"] for verb, patch in kube.written if verb == "patch")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "DowngradeRefused")
    assert REFUSAL in degraded["message"] and "nothing was changed" in degraded["message"]
    assert [(t, r) for t, r, _ in posted if t == "Warning"] == [("Warning", "DowngradeRefused")]
