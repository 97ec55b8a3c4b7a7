"""The Node, its Lease and status heartbeats: what the node-lifecycle controller watches."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from typing import Any, cast

from lightkube import ApiError
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from localcluster import config
from localcluster.node.kube import Kube, micro_now, now
from localcluster.paths import NodePaths

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LEASE_SECONDS = 40
RENEW_SECONDS = 10.0


def _memory_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 8 * 1024 * 1024


def node_status(name: str, version: str, cpu: str, pods: int, port: int) -> Obj:
    stamp = now()
    resources = {"cpu": cpu, "memory": f"{_memory_kib()}Ki", "pods": str(pods),
                 "ephemeral-storage": "100Gi"}  # fmt: skip

    def cond(kind: str, ok: bool, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": "True" if ok else "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }

    return {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            cond("MemoryPressure", False, "KubeletHasSufficientMemory", "sufficient memory"),
            cond("DiskPressure", False, "KubeletHasNoDiskPressure", "no disk pressure"),
            cond("PIDPressure", False, "KubeletHasSufficientPID", "sufficient PID"),
            cond("Ready", True, "KubeletReady", "localcluster agent is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": config.GATEWAY_IP},
            {"type": "Hostname", "address": name},
        ],
        # Where the API server finds this node's kubelet API (kubeletapi.py).
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "kubeletVersion": version,
            "kubeProxyVersion": version,
            "operatingSystem": "linux",
            "architecture": "amd64",
            "containerRuntimeVersion": "localcluster://0.1.0",
            "osImage": "localcluster process node",
            "kernelVersion": platform.release(),
            "machineID": name,
            "systemUUID": name,
            "bootID": str(os.getpid()),
        },
    }


class Heartbeat:
    def __init__(
        self, kube: Kube, paths: NodePaths, cpu: str, max_pods: int, kubelet_port: int
    ) -> None:
        self.kube, self.paths, self.cpu, self.max_pods = kube, paths, cpu, max_pods
        self.kubelet_port = kubelet_port
        self.name = paths.node
        self.version = "v0.0.0"

    async def register(self) -> None:
        self.version = await self.kube.server_version()
        body = cast(
            Node,
            Node.from_dict(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": self.name,
                        "labels": {
                            "kubernetes.io/hostname": self.name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                        },
                    },
                    "spec": {},
                }
            ),
        )
        try:
            await self.kube.client.create(body)
        except ApiError as e:
            if e.status.code != 409:
                raise
        await self._post_status()
        await self._renew_lease()

    async def _post_status(self) -> None:
        status = node_status(self.name, self.version, self.cpu, self.max_pods, self.kubelet_port)
        await self.kube.client.patch(
            Node.Status, self.name, {"status": status}, patch_type=PatchType.MERGE
        )

    async def _renew_lease(self) -> None:
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": micro_now(),
        }
        try:
            await self.kube.client.patch(
                Lease, self.name, {"spec": spec}, namespace="kube-node-lease",
                patch_type=PatchType.MERGE,
            )  # fmt: skip
        except ApiError as e:
            if e.status.code != 404:
                raise
            lease = cast(Lease, Lease.from_dict(
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": "kube-node-lease"}, "spec": spec}
            ))  # fmt: skip
            await self.kube.client.create(lease)

    async def run(self) -> None:
        """Renew the Lease and post status every RENEW_SECONDS unless told to stop; renew
        at once when heartbeats are resumed."""
        last = time.monotonic()
        stopped = False
        while True:
            await asyncio.sleep(1.0)
            if self.paths.heartbeats_stopped.exists():
                stopped = True
                continue
            if not stopped and time.monotonic() - last < RENEW_SECONDS:
                continue
            stopped, last = False, time.monotonic()
            try:
                await self._renew_lease()
                await self._post_status()
            except ApiError as e:
                if e.status.code == 404:  # the Node was deleted: register again
                    await self.register()
                else:
                    log.warning("heartbeat failed: %s", e)
            except Exception as e:
                log.warning("heartbeat failed: %s", e)
