"""The EtcdRestore shell against a small in-memory API: one round per step, every call it
makes declared in RBAC, the cluster created once with the restore's annotation and no owner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from etcd_operator import rbac
from etcd_operator.handlers import etcdrestore
from etcd_operator.kube import EtcdClusterResource, EtcdRestoreResource
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.resources.restore import FETCH_CONTAINER, STATUS_CONTAINER
from unit.support.objects import Raw

SHA = "c" * 64


def _not_found() -> ApiError:
    return ApiError(status=Status(code=404, message="not found", reason="NotFound"))


class FakeApi:
    """The restore, its pod, the source claim and the cluster, by kind; records every call."""

    def __init__(self) -> None:
        self.calls = set[tuple[str, str, str]]()
        self.restore: dict[str, Any] = {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdRestore",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 1},
            "spec": {
                "source": {"volume": {"claimName": "backups", "path": "s.db"}, "sha256": SHA},
                "cluster": {"name": "new", "spec": {"replicas": 3}},
            },
        }
        self.pod: Pod | None = None
        self.cluster: dict[str, Any] | None = None
        self.logs = {
            FETCH_CONTAINER: [f"snapshot-fetch: ok: 4096 bytes, sha256 {SHA}"],
            STATUS_CONTAINER: [json.dumps({"hash": 1, "revision": 42, "totalKey": 3})],
        }

    def _record(self, kind: Any, verb: str, sub: str | None = None) -> None:
        self.calls.add((*rbac.resource_of(kind, sub), verb))

    async def get(self, kind: Any, name: str, **_: Any) -> Any:
        self._record(kind, "get")
        if kind is EtcdRestoreResource:
            return Raw(self.restore)
        if kind is Pod:
            if self.pod is None:
                raise _not_found()
            return self.pod
        if kind is PersistentVolumeClaim:
            return PersistentVolumeClaim()
        if kind is EtcdClusterResource:
            if self.cluster is None:
                raise _not_found()
            return Raw(self.cluster)
        raise AssertionError(kind)

    async def create(self, obj: Any, **_: Any) -> None:
        self._record(type(obj), "create")
        if isinstance(obj, Pod):
            self.pod = obj
        else:
            assert self.cluster is None, "a second cluster"
            self.cluster = obj.to_dict()

    async def delete(self, kind: Any, name: str, **_: Any) -> None:
        self._record(kind, "delete")
        self.pod = None

    async def patch(self, kind: Any, name: str, obj: Any, **_: Any) -> None:
        self._record(kind, "patch")
        self.restore["status"] = obj["status"]

    async def log(self, name: str, *, container: str, **_: Any) -> AsyncIterator[str]:
        self._record(Pod, "get", "log")
        for line in self.logs[container]:
            yield line


async def _round(api: FakeApi) -> bool:
    return await etcdrestore.restore_once(
        api,  # type: ignore[arg-type]
        "ns",
        "r",
        None,  # type: ignore[arg-type]
        DEFAULT_CLUSTER_DOMAIN,
    )


def _phase(api: FakeApi) -> str:
    return str(api.restore.get("status", {}).get("phase"))


async def test_a_restore_verifies_then_creates_one_cluster_and_every_call_is_declared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(etcdrestore.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(etcdrestore.kopf, "warn", lambda *a, **k: None)
    api = FakeApi()
    assert not await _round(api)
    assert api.pod is not None and _phase(api) == "Verifying"
    api.pod.status = Pod.from_dict({"status": {"phase": "Succeeded"}}).status
    await _round(api)  # records what the pod found
    assert api.restore["status"]["revision"] == 42 and api.restore["status"]["sha256"] == SHA
    await _round(api)  # removes the pod, which mounts the source
    assert api.pod is None and api.cluster is None
    await _round(api)  # creates the cluster
    assert api.cluster is not None and _phase(api) == "Restoring"
    meta = api.cluster["metadata"]
    assert meta["annotations"][etcdrestore.RESTORE_UID_ANNOTATION] == "u-1"
    assert "ownerReferences" not in meta
    assert api.cluster["spec"]["bootstrap"]["restore"]["sha256"] == SHA
    assert api.restore["status"]["clusterName"] == "new"
    # Not ready yet: waits, never creates it again (FakeApi refuses a second one).
    assert not await _round(api)
    assert not await _round(api)
    granted = {(r.group, r.resource, r.verb) for r in rbac.declared()}
    assert ("", "pods/log", "get") in api.calls
    assert api.calls <= granted, api.calls - granted


async def test_an_existing_cluster_of_the_name_is_refused_and_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warned: list[str] = []
    monkeypatch.setattr(etcdrestore.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(etcdrestore.kopf, "warn", lambda *a, **k: warned.append(k["reason"]))
    api = FakeApi()
    api.cluster = {"metadata": {"name": "new", "namespace": "ns"}, "spec": {"replicas": 3}}
    assert await _round(api)
    assert _phase(api) == "Failed" and warned == ["ClusterExists"]
    assert api.pod is None
