"""The node runs containers as their securityContext says, like a kubelet: user, groups,
fsGroup-owned volumes, no_new_privs, and refuses runAsNonRoot with root."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Namespace, PersistentVolume, PersistentVolumeClaim

from localcluster.config import StateDir
from localcluster.paths import find_pod
from localcluster.testing import pods as t

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
M = "/run/node-security-e2e"  # mount paths are made on the host's filesystem
USER, FS_GROUP, EXTRA_GROUP = 65532, 2000, 3000
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": USER,
    "runAsGroup": USER,
    "fsGroup": FS_GROUP,
    "supplementalGroups": [EXTRA_GROUP],
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def ns(api: Client) -> Iterator[str]:
    """A namespace where the API server enforces the restricted Pod Security Standard."""
    name = f"sec-e2e-{uuid.uuid4().hex[:6]}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    api.create(Namespace.from_dict({"metadata": {"name": name, "labels": labels}}))
    yield name
    api.delete(Namespace, name)


def pod(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    """A pod the restricted Pod Security Standard admits, running as USER."""
    container = {"securityContext": RESTRICTED, **spec.pop("container", {})}
    return t.pod_body(
        name, image, command, container=container, securityContext=POD_SECURITY, **spec
    )


create_in = t.create_in


def test_process_runs_as_its_user_with_fs_group_owned_volumes(
    state: StateDir, api: Client, ns: str
) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "10Mi"}}}}  # fmt: skip
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "stringData": {"password": "hunter2"}}  # fmt: skip
    script = (
        f"id -u > {M}/scratch/uid; id -G > {M}/scratch/groups;"
        f" grep NoNewPrivs /proc/self/status > {M}/scratch/nnp;"
        f" mkdir {M}/data/member && cp {M}/creds/password {M}/data/member/ && sleep 3600"
    )
    mounts = [{"name": "scratch", "mountPath": f"{M}/scratch"},
              {"name": "data", "mountPath": f"{M}/data"},
              {"name": "creds", "mountPath": f"{M}/creds", "readOnly": True}]  # fmt: skip
    # Exec probes run as the container's user too: ready only if so.
    probe = {"exec": {"command": ["sh", "-c", f"test $(id -u) = {USER}"]}, "periodSeconds": 1}
    container = {"volumeMounts": mounts, "readinessProbe": probe}
    spec = pod("user", "busybox:1.36", ["sh", "-c", script], container=container,
               volumes=[{"name": "scratch", "emptyDir": {}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "creds", "secret": {"secretName": "creds"}}])  # fmt: skip
    create_in(api, ns, claim, secret, spec)
    t.wait_for(lambda: t.is_ready(api, ns, "user"), what="user ready")
    node, record = find_pod(state, ns, "user")
    scratch = node.volume_dir(record.uid, "scratch")
    assert t.wait_for(lambda: t.text_of(scratch / "nnp")).split() == ["NoNewPrivs:", "1"]
    assert (scratch / "uid").read_text().strip() == str(USER)
    groups = {int(g) for g in (scratch / "groups").read_text().split()}
    assert groups == {USER, EXTRA_GROUP, FS_GROUP}
    pid = int(node.pid_file(record.uid, "main").read_text())
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert status["Uid"].split() == [str(USER)] * 4 and status["Gid"].split() == [str(USER)] * 4
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    # The claim's directory belongs to the fsGroup; what the user made in it is its own.
    pvc = api.get(PersistentVolumeClaim, "data", namespace=ns)
    assert pvc.spec is not None and pvc.spec.volumeName
    pv = api.get(PersistentVolume, pvc.spec.volumeName)
    assert pv.spec is not None and pv.spec.hostPath is not None
    data = Path(pv.spec.hostPath.path)
    assert data.stat().st_gid == FS_GROUP
    # cp makes the file, then writes it: wait for its content, not for it to exist.
    assert t.wait_for(lambda: t.text_of(data / "member" / "password")) == "hunter2"
    copied = data / "member"
    assert copied.stat().st_uid == USER and copied.stat().st_gid == FS_GROUP


def test_images_run_their_programs_as_a_non_root_user(
    state: StateDir, api: Client, ns: str
) -> None:
    """The etcd binaries and the operator's Python live under /root (0700) on the host."""
    version = sorted(t.etcd_versions(state))[-1]
    create_in(
        api, ns,
        pod("etcd", f"quay.io/coreos/etcd:v{version}", ["etcdctl", "version"],
            restartPolicy="Never"),
        pod("operator", "ghcr.io/etcd-operator/etcd-operator:dev", ["etcd-operator", "version"],
            restartPolicy="Never"),
    )  # fmt: skip
    for name in ("etcd", "operator"):
        status = t.wait_for(lambda n=name: t.finished(api, ns, n), what=f"{name} finished")
        assert status["phase"] == "Succeeded", status


def config_error(api: Client, ns: str, name: str) -> dict[str, Any] | None:
    state = t.container_status(api, ns, name, "main").get("state") or {}
    waiting: dict[str, Any] = state.get("waiting") or {}
    return waiting if waiting.get("reason") == "CreateContainerConfigError" else None


def test_run_as_non_root_with_uid_0_is_refused_before_start(api: Client, ns: str) -> None:
    # The restricted namespace's admission already refuses it: the node is the last line.
    root = pod("root", "busybox:1.36", ["sleep", "3600"],
               container={"securityContext": {**RESTRICTED, "runAsUser": 0}})  # fmt: skip
    with pytest.raises(ApiError) as refused:
        create_in(api, ns, root)
    assert refused.value.status.code == 403
    other = f"sec-root-{uuid.uuid4().hex[:6]}"
    t.create_namespace(api, other)
    try:
        create_in(api, other, pod("root", "busybox:1.36", ["sleep", "3600"],
                                  container={"securityContext": {"runAsUser": 0}}))  # fmt: skip
        waiting = t.wait_for(lambda: config_error(api, other, "root"), what="config error")
        assert "runAsUser breaks non-root policy" in waiting["message"]
        assert t.pod_status(api, other, "root")["phase"] == "Pending"
    finally:
        api.delete(Namespace, other)
