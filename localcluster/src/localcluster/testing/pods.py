"""Helpers for tests that drive the process node through the API (polling, pods, etcdctl)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from lightkube import ApiError, Client
from lightkube.codecs import from_dict
from lightkube.resources.core_v1 import Namespace, Pod, ServiceAccount

from localcluster.config import StateDir
from localcluster.node.lifecycle import plan_file
from localcluster.paths import find_pod

T = TypeVar("T")
Obj = dict[str, Any]


def wait_for(
    check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> T:
    """Poll until check() returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (ApiError, OSError, LookupError) as e:
            last = None
            error: Exception | None = e
        else:
            error = None
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or check}: {last or error}")


def create(kube: Client, *objs: Obj) -> None:
    for obj in objs:
        kube.create(from_dict(obj))


def create_in(kube: Client, namespace: str, *objs: Obj) -> None:
    """Create namespaced objects (dicts without a namespace) in one namespace."""
    for obj in objs:
        obj["metadata"]["namespace"] = namespace
    create(kube, *objs)


def pod_body(name: str, image: str, command: list[str], **spec: Any) -> Obj:
    """A pod with one container `main`; ``container=`` adds fields to it, the rest to the
    pod's spec."""
    container = {"name": "main", "image": image, "command": command}
    container.update(spec.pop("container", {}))
    body = {"terminationGracePeriodSeconds": 5, "containers": [container], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def create_namespace(kube: Client, name: str) -> None:
    """Create a namespace and wait for its `default` ServiceAccount: the controller-manager adds
    it moments later (longer just after a control-plane restart), and pods are refused until then,
    as on any cluster."""
    kube.create(cast(Namespace, Namespace.from_dict({"metadata": {"name": name}})))
    wait_for(
        lambda: kube.get(ServiceAccount, "default", namespace=name),
        timeout=60,
        what=f"the default service account of {name}",
    )


def pod_status(kube: Client, namespace: str, name: str) -> Obj:
    status: Obj = kube.get(Pod, name, namespace=namespace).to_dict().get("status") or {}
    return status


def is_ready(kube: Client, namespace: str, name: str) -> bool:
    conds = pod_status(kube, namespace, name).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def container_status(kube: Client, namespace: str, name: str, container: str) -> Obj:
    for cs in pod_status(kube, namespace, name).get("containerStatuses") or []:
        if cs["name"] == container:
            return dict(cs)
    return {}


def gone(kube: Client, namespace: str, name: str) -> bool:
    try:
        kube.get(Pod, name, namespace=namespace)
    except ApiError as e:
        return e.status.code == 404
    return False


def finished(kube: Client, namespace: str, name: str) -> Obj | None:
    """The pod's status once its phase is Succeeded or Failed."""
    status = pod_status(kube, namespace, name)
    return status if status.get("phase") in ("Succeeded", "Failed") else None


def restarted(kube: Client, namespace: str, name: str, container: str) -> Obj | None:
    """The container's status once it has restarted at least once."""
    status = container_status(kube, namespace, name, container)
    return status if status.get("restartCount", 0) >= 1 else None


def text_of(path: Path) -> str | None:
    """File contents once the file exists and is not empty."""
    return path.read_text() if path.exists() and path.stat().st_size else None


def etcd_versions(state: StateDir) -> dict[str, Path]:
    """etcd versions the node agents can run (version -> bin dir), as last started."""
    plan = json.loads(plan_file(state).read_text())
    return {v: Path(d) for v, d in plan.get("etcd", {}).items()}


def etcdctl(bin_dir: Path, endpoints: list[str], *args: str, timeout: float = 5.0) -> str:
    proc = subprocess.run(
        [str(bin_dir / "etcdctl"), f"--endpoints={','.join(endpoints)}",
         f"--command-timeout={timeout}s", "--dial-timeout=2s", *args],
        capture_output=True, text=True, timeout=timeout + 10, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise OSError(f"etcdctl {' '.join(args)}: {proc.stderr.strip()[-400:]}")
    return proc.stdout


_CONNECT = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("timeout")
else:
    if sys.argv[4] == "read":
        try:
            print("replied" if s.recv(16) else "closed")
        except socket.timeout:
            print("silent")
        except OSError:
            print("closed")
    else:
        print("connected")
"""


def connect_from(
    state: StateDir,
    namespace: str,
    pod: str,
    ip: str,
    port: int,
    *,
    timeout: float = 1.5,
    read: bool = False,
) -> str:
    """Open a TCP connection from inside the pod's network namespace (its address is the
    source): "connected", "refused" (reached, nothing listens) or "timeout" (dropped). With
    `read`, what the server did once connected: "replied", "closed" or "silent"."""
    _, record = find_pod(state, namespace, pod)
    return _connect(["ip", "netns", "exec", record.netns], ip, port, timeout, read)


def connect_from_host(ip: str, port: int, *, timeout: float = 1.5, read: bool = False) -> str:
    """As connect_from, from the host (the node's own address is the source)."""
    return _connect([], ip, port, timeout, read)


def _connect(prefix: list[str], ip: str, port: int, timeout: float, read: bool) -> str:
    mode = "read" if read else "connect"
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", _CONNECT, ip, str(port), str(timeout), mode],
        capture_output=True, text=True, timeout=timeout + 20, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise OSError(f"connecting to {ip}:{port}: {proc.stderr.strip()[-300:]}")
    return proc.stdout.strip()
