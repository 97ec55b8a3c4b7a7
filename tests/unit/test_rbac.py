"""RBAC is generated from declarations beside the code: the role grants exactly what is
declared, and every Kubernetes API call the handlers make is declared."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from etcd_operator import rbac
from etcd_operator.etcd import EtcdUnavailable
from etcd_operator.handlers import apply, etcdcluster
from etcd_operator.handlers.observe import EtcdSession, World, observe
from etcd_operator.leader import AlwaysLeader
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.planner import (
    CancelDowngrade,
    DeletePod,
    DeletePVC,
    DisableAuth,
    EnableAuth,
    EnableDowngrade,
    ExpandVolume,
    UpgradeMember,
)
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient


def _granted() -> set[tuple[str, str, str]]:
    """What the ClusterRole (or the watched namespaces' Roles) must grant."""
    return {(r.group, r.resource, r.verb) for r in rbac.declared() if not r.operator_namespace}


def _in_operator_namespace() -> set[tuple[str, str, str]]:
    return {(r.group, r.resource, r.verb) for r in rbac.declared() if r.operator_namespace}


def _body(**spec: Any) -> dict[str, Any]:
    cluster = make_cluster(**spec)
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": cluster.name, "namespace": cluster.namespace, "uid": "uid-1"},
        "spec": spec,
    }


def test_the_cluster_role_grants_exactly_the_declared_rules() -> None:
    rules = [r.to_dict() for r in rbac.cluster_rules()]
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
    assert not resources & {"configmaps", "leases", "pods/status"}


def test_leases_are_granted_only_in_the_operators_namespace() -> None:
    assert _in_operator_namespace() == {
        ("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")
    }
    # The chart puts them in a Role in its release namespace (tests/install/test_render.py).
    assert _triples(rbac.operator_namespace_rules()) == _in_operator_namespace()


def test_secrets_are_read_by_name_never_listed_or_watched() -> None:
    # Certificates and the root password, by name; certificates are renewed in place.
    verbs = {v for _, res, v in _granted() if res == "secrets"}
    assert verbs == {"get", "create", "patch"}


async def test_every_api_call_of_a_reconcile_round_is_declared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(etcdcluster.kopf, "event", lambda *a, **k: None)
    kube = RecordingClient(_body(replicas=3, auth={"enabled": True}))
    loop = etcdcluster.ClusterLoop()
    await etcdcluster.reconcile_once(
        kube,  # type: ignore[arg-type]
        loop,
        "ns",
        "demo",
        cluster_domain=DEFAULT_CLUSTER_DOMAIN,
    )
    assert ("", "pods", "create") in kube.calls  # the round bootstrapped the cluster
    assert ("", "secrets", "get") in kube.calls  # and read root's password (auth wanted)
    assert kube.calls <= _granted(), kube.calls - _granted()


async def test_every_api_call_of_apply_and_delete_is_declared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(etcdcluster.kopf, "event", lambda *a, **k: None)
    cluster = make_cluster(pvcRetentionPolicy={"whenDeleted": "Delete"})
    kube = RecordingClient(_body(), pvcs=["demo-0"])
    world = await observe(
        kube,  # type: ignore[arg-type]
        cluster,
        deleting=False,
        etcd=EtcdSession(),
        domain=DEFAULT_CLUSTER_DOMAIN,
    )
    world = World(world.observed, {"demo-0": Pod(metadata=ObjectMeta(name="demo-0"))}, None, {})
    for step in (
        DeletePod("demo-3"),
        DeletePVC("demo-3"),
        UpgradeMember("demo-0", 1, "3.5.17", "3.6.16"),
        UpgradeMember("demo-0", 1, "3.5.17", "3.6.16", evict=False),
        ExpandVolume("demo-0", "demo-0"),
    ):
        await apply.apply_step(
            kube,  # type: ignore[arg-type]
            cluster,
            world,
            step,
            cluster_domain=DEFAULT_CLUSTER_DOMAIN,
        )
    for step in (EnableAuth(), DisableAuth(), EnableDowngrade("3.5.35"), CancelDowngrade(1, "x")):
        # No etcd client in this world: the Secret is read (and generated) before etcd is asked.
        with pytest.raises(EtcdUnavailable):
            await apply.apply_step(
                kube,  # type: ignore[arg-type]
                cluster,
                world,
                step,
                cluster_domain=DEFAULT_CLUSTER_DOMAIN,
            )
    body = _body(pvcRetentionPolicy={"whenDeleted": "Delete"})
    await etcdcluster.cluster_deleted(body=body, name="demo", namespace="ns", memo=_Memo(kube))
    assert {
        ("", "pods", "delete"),
        ("", "pods/eviction", "create"),
        ("", "persistentvolumeclaims", "delete"),
        ("", "persistentvolumeclaims", "patch"),
        ("", "secrets", "get"),
        ("", "secrets", "create"),
    } <= kube.calls
    assert kube.calls <= _granted(), kube.calls - _granted()


class _Memo:
    def __init__(self, kube: RecordingClient) -> None:
        self.kube = kube
        self.leader = AlwaysLeader()


def _triples(rules: list[Any]) -> set[tuple[str, str, str]]:
    return {(g, res, v) for r in rules for g in r.apiGroups for res in r.resources for v in r.verbs}


def test_a_namespaced_install_splits_the_declarations_by_scope() -> None:
    role = _triples(rbac.namespaced_rules())
    cluster_scoped = _triples(rbac.cluster_scoped_rules())
    cluster_wide_only = {
        (r.group, r.resource, r.verb) for r in rbac.declared() if r.cluster_wide_only
    }
    # Every declared rule lands in exactly one place (leases: the operator's namespace).
    assert role | cluster_scoped | cluster_wide_only == _granted()
    assert not role & cluster_scoped
    assert not (role | cluster_scoped) & cluster_wide_only
    # A Role can only grant namespaced resources; the cluster-scoped part is read-only.
    assert {res for _, res, _ in role} >= {"pods", "etcdclusters", "events"}
    assert cluster_scoped == {("storage.k8s.io", "storageclasses", "get")}
    # kopf's CRD watch is switched off in namespaced mode, and no mode lists Namespaces.
    assert cluster_wide_only == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }
    assert not any(res == "namespaces" for _, res, _ in _granted())


def test_scope_comes_from_the_resource_type() -> None:
    from lightkube.resources.core_v1 import Namespace
    from lightkube.resources.storage_v1 import StorageClass

    from etcd_operator.kube import EtcdClusterResource

    assert rbac.is_namespaced(Pod) and rbac.is_namespaced(EtcdClusterResource.Status)
    assert not rbac.is_namespaced(Namespace) and not rbac.is_namespaced(StorageClass)


async def test_namespaced_mode_switches_kopf_scanning_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What keeps kopf from listing Namespaces and watching CRDs without a ClusterRole."""
    import kopf

    from etcd_operator.scope import NAMESPACES_ENV

    monkeypatch.setattr(etcdcluster, "new_client", lambda: None)
    for env, disabled in (("", False), ("a,b", True)):
        monkeypatch.setenv(NAMESPACES_ENV, env)
        settings = kopf.OperatorSettings()
        await etcdcluster.configure(settings=settings, memo=kopf.Memo())
        assert settings.scanning.disabled is disabled
