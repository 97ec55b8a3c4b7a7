"""The localcluster control plane behaves like a real cluster's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lightkube import ApiError, AsyncClient, Client
from lightkube.models.core_v1 import (
    Container,
    PersistentVolumeClaimSpec,
    PodSpec,
    SecurityContext,
    VolumeResourceRequirements,
)
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
)

from localcluster import build, cluster, controlplane
from localcluster.cluster import LocalCluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def wait_until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def gone(get: Callable[[], object]) -> bool:
    """Whether the object that `get` reads is gone (404)."""
    try:
        get()
    except ApiError as err:
        if err.status.code == 404:
            return True
        raise
    return False


@pytest.fixture
def namespace(kube_sync: Client) -> Iterator[str]:
    name = f"cp-{uuid.uuid4().hex[:8]}"
    kube_sync.create(Namespace(metadata=ObjectMeta(name=name)))
    yield name
    kube_sync.delete(Namespace, name)


def test_apiserver_ready_and_reports_pinned_version(localcluster: LocalCluster) -> None:
    assert controlplane.api_ready(localcluster.state)
    kubectl = [str(localcluster.binaries.kubectl), "--kubeconfig", str(localcluster.kubeconfig)]
    out = subprocess.run(
        [*kubectl, "version", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    versions = json.loads(out)
    pinned = f"v{build.KUBERNETES_VERSION}"
    assert versions["serverVersion"]["gitVersion"] == pinned
    assert versions["clientVersion"]["gitVersion"] == pinned
    assert versions["serverVersion"]["minor"] == build.KUBERNETES_VERSION.split(".")[1]


def test_start_is_idempotent_when_running(localcluster: LocalCluster) -> None:
    pids = {c: controlplane.component_pid(localcluster.state, c) for c in controlplane.COMPONENTS}
    controlplane.start(localcluster.state, localcluster.binaries)
    assert controlplane.is_running(localcluster.state)
    after = {c: controlplane.component_pid(localcluster.state, c) for c in controlplane.COMPONENTS}
    assert after == pids


def test_etcd_binaries_map_image_tags(localcluster: LocalCluster) -> None:
    for version, binaries in localcluster.binaries.etcd_versions.items():
        assert build.etcd_binaries_for(f"v{version}") == binaries
        minor = ".".join(version.split(".")[:2])
        assert build.etcd_binaries_for(minor) is not None
        out = subprocess.run(
            [str(binaries.etcdctl), "version"], check=True, capture_output=True, text=True
        ).stdout
        assert f"etcdctl version: {version}" in out
    assert build.etcd_binaries_for("v3.4.0") is None


async def test_namespace_is_finalized_by_the_namespace_controller(kube: AsyncClient) -> None:
    name = f"cp-ns-{uuid.uuid4().hex[:8]}"
    await kube.create(Namespace(metadata=ObjectMeta(name=name)))
    content = ConfigMap(metadata=ObjectMeta(name="content", namespace=name), data={"a": "b"})
    await kube.create(content)
    await kube.delete(Namespace, name)
    deadline = time.monotonic() + 60
    while True:
        try:
            ns = await kube.get(Namespace, name)
        except ApiError as err:
            assert err.status.code == 404
            break
        assert ns.status is not None and ns.status.phase == "Terminating"
        assert time.monotonic() < deadline, "namespace was not finalized"
        await asyncio.sleep(0.25)


def test_garbage_collector_deletes_dependents(kube_sync: Client, namespace: str) -> None:
    owner = kube_sync.create(ConfigMap(metadata=ObjectMeta(name="owner")), namespace=namespace)
    assert owner.metadata is not None and owner.metadata.uid is not None
    ref = OwnerReference(apiVersion="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    kube_sync.create(
        ConfigMap(metadata=ObjectMeta(name="dependent", ownerReferences=[ref])), namespace=namespace
    )
    kube_sync.delete(ConfigMap, "owner", namespace=namespace)
    wait_until(
        lambda: gone(lambda: kube_sync.get(ConfigMap, "dependent", namespace=namespace)),
        what="GC of dependent",
    )


def test_pvc_in_default_class_is_bound_to_a_provisioned_pv(
    kube_sync: Client, namespace: str
) -> None:
    claim = PersistentVolumeClaim(
        metadata=ObjectMeta(name="data"),
        spec=PersistentVolumeClaimSpec(
            accessModes=["ReadWriteOnce"],
            resources=VolumeResourceRequirements(requests={"storage": "1Gi"}),
        ),  # no storageClassName: the default class must apply
    )
    kube_sync.create(claim, namespace=namespace)

    def bound() -> bool:
        pvc = kube_sync.get(PersistentVolumeClaim, "data", namespace=namespace)
        return pvc.status is not None and pvc.status.phase == "Bound"

    wait_until(bound, what="PVC bound")
    pvc = kube_sync.get(PersistentVolumeClaim, "data", namespace=namespace)
    assert pvc.spec is not None and pvc.spec.storageClassName == controlplane.STORAGE_CLASS
    assert pvc.spec.volumeName
    pv = kube_sync.get(PersistentVolume, pvc.spec.volumeName)
    assert pv.spec is not None and pv.spec.hostPath is not None
    path = Path(pv.spec.hostPath.path)
    assert path.is_dir() and path.is_relative_to(controlplane.HOSTPATH_PV_DIR)
    # Reclaim policy Delete: the PV and its directory go with the claim.
    kube_sync.delete(PersistentVolumeClaim, "data", namespace=namespace)
    volume = pvc.spec.volumeName
    wait_until(lambda: gone(lambda: kube_sync.get(PersistentVolume, volume)), what="PV deletion")
    # The provisioner removes the directory: wait for it rather than assume an order.
    wait_until(lambda: not path.exists(), timeout=30, what="the PV's directory removed")


def test_pod_security_admission_rejects_privileged_pod(kube_sync: Client, namespace: str) -> None:
    kube_sync.patch(
        Namespace,
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    pod = Pod(
        metadata=ObjectMeta(name="privileged"),
        spec=PodSpec(
            containers=[
                Container(
                    name="main",
                    image="busybox:1.36",
                    securityContext=SecurityContext(privileged=True),
                )
            ]
        ),
    )
    with pytest.raises(ApiError) as raised:
        kube_sync.create(pod, namespace=namespace)
    assert raised.value.status.code == 403
    assert "PodSecurity" in str(raised.value.status.message)


def test_down_leaves_no_control_plane_processes(localcluster: LocalCluster) -> None:
    """Runs last in this module: stops the whole cluster, then brings it back."""
    state = localcluster.state
    before = cluster.status(state)
    pids = [controlplane.component_pid(state, c) for c in controlplane.COMPONENTS]
    assert all(pid is not None for pid in pids)

    cluster.down(state)
    cluster.down(state)  # idempotent

    assert not controlplane.is_running(state)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or controlplane._proc_argv(pid) is None  # type: ignore[arg-type]
    assert controlplane._stray_pids(state) == []
    assert not controlplane.api_ready(state)

    # Restore the session's cluster for the modules that run after this one.
    cluster.up(state, nodes=len(before.nodes), binaries=localcluster.binaries, progress=False)
    assert controlplane.api_ready(state)
