"""RBAC is generated from declarations beside the code: the role grants exactly what is
declared, and every Kubernetes API call the handlers make is declared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from etcd_operator import rbac
from etcd_operator.handlers import apply, etcdcluster
from etcd_operator.handlers.observe import World, observe
from etcd_operator.manifests import cluster_role
from etcd_operator.planner import DeletePod, DeletePVC, ExpandVolume, UpgradeMember
from unit.support.clusters import make_cluster


class RecordingClient:
    """A stand-in for lightkube's AsyncClient that records (group, resource, verb)."""

    def __init__(self, body: dict[str, Any], pvcs: tuple[str, ...] = ()) -> None:
        self.body, self.pvcs, self.calls = body, list(pvcs), set[tuple[str, str, str]]()

    def _record(self, kind: Any, verb: str) -> None:
        self.calls.add((*rbac.resource_of(kind), verb))

    async def get(self, kind: Any, name: str, **_: Any) -> Any:
        self._record(kind, "get")
        body = self.body

        class Raw:
            def to_dict(self) -> dict[str, Any]:
                return body

        return Raw()

    def list(self, kind: Any, **_: Any) -> AsyncIterator[Any]:
        self._record(kind, "list")
        names = self.pvcs if kind is PersistentVolumeClaim else []

        async def items() -> AsyncIterator[Any]:
            for name in names:
                yield kind(metadata=ObjectMeta(name=name))

        return items()

    async def create(self, obj: Any, **_: Any) -> None:
        self._record(type(obj), "create")  # a subresource (pods/eviction) knows its own name

    async def delete(self, kind: Any, name: str, **_: Any) -> None:
        self._record(kind, "delete")

    async def patch(self, kind: Any, name: str, obj: Any, **_: Any) -> None:
        self._record(kind, "patch")

    async def apply(self, obj: Any, **_: Any) -> None:
        # Server-side apply is a PATCH that creates the object when it is missing.
        self._record(type(obj), "patch")
        self._record(type(obj), "create")


def _granted() -> set[tuple[str, str, str]]:
    return {(r.group, r.resource, r.verb) for r in rbac.declared()}


def _body(**spec: Any) -> dict[str, Any]:
    cluster = make_cluster(**spec)
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": cluster.name, "namespace": cluster.namespace, "uid": "uid-1"},
        "spec": spec,
    }


def test_the_cluster_role_grants_exactly_the_declared_rules() -> None:
    rules = cluster_role().to_dict()["rules"]
    generated = {
        (g, res, v)
        for r in rules
        for g in r["apiGroups"]
        for res in r["resources"]
        for v in r["verbs"]
    }
    assert generated == _granted()
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)


def test_nothing_unused_is_granted() -> None:
    resources = {res for _, res, _ in _granted()}
    assert not resources & {"secrets", "configmaps", "leases", "pods/status"}


async def test_every_api_call_of_a_reconcile_round_is_declared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(etcdcluster.kopf, "event", lambda *a, **k: None)
    kube = RecordingClient(_body(replicas=3))
    await etcdcluster.reconcile_once(kube, "ns", "demo")  # type: ignore[arg-type]
    assert ("", "pods", "create") in kube.calls  # the round bootstrapped the cluster
    assert kube.calls <= _granted(), kube.calls - _granted()


async def test_every_api_call_of_apply_and_delete_is_declared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(etcdcluster.kopf, "event", lambda *a, **k: None)
    cluster = make_cluster(pvcRetentionPolicy={"whenDeleted": "Delete"})
    kube = RecordingClient(_body(), pvcs=["demo-0"])
    world = await observe(kube, cluster, deleting=False)  # type: ignore[arg-type]
    world = World(world.observed, {"demo-0": Pod(metadata=ObjectMeta(name="demo-0"))}, None, {})
    for step in (
        DeletePod("demo-3"),
        DeletePVC("demo-3"),
        UpgradeMember("demo-0", 1, "3.5.17", "3.6.16"),
        UpgradeMember("demo-0", 1, "3.5.17", "3.6.16", evict=False),
        ExpandVolume("demo-0", "demo-0"),
    ):
        await apply.apply_step(kube, cluster, world, step)  # type: ignore[arg-type]
    body = _body(pvcRetentionPolicy={"whenDeleted": "Delete"})
    await etcdcluster.cluster_deleted(body=body, name="demo", namespace="ns", memo=_Memo(kube))
    assert {
        ("", "pods", "delete"),
        ("", "pods/eviction", "create"),
        ("", "persistentvolumeclaims", "delete"),
        ("", "persistentvolumeclaims", "patch"),
    } <= kube.calls
    assert kube.calls <= _granted(), kube.calls - _granted()


class _Memo:
    def __init__(self, kube: RecordingClient) -> None:
        self.kube = kube
