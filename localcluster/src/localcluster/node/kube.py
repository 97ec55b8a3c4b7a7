"""The agent's view of the API server: lookups as plain dicts, status patches, Events."""

from __future__ import annotations

import datetime
import logging
from typing import Any, cast

from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.config import client_adapter
from lightkube.resources.core_v1 import (
    ConfigMap,
    Event,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    Secret,
    Service,
    ServiceAccount,
    ServiceAccountToken,
)
from lightkube.types import PatchType

from localcluster.node.envs import decode_data

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_KINDS: dict[str, Any] = {
    "Secret": Secret,
    "ConfigMap": ConfigMap,
    "PersistentVolumeClaim": PersistentVolumeClaim,
    "Pod": Pod,
}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kube:
    def __init__(self, kubeconfig: str, node: str) -> None:
        self.config = KubeConfig.from_file(kubeconfig)
        single = self.config.get()
        assert single is not None, f"{kubeconfig} has no current context"
        self.single = single
        self.client = AsyncClient(self.config, field_manager=f"localcluster-{node}")
        self.node = node
        # (pod uid, reason, message) -> (event name, count): repeats bump the count, as a
        # kubelet's event aggregation does, instead of flooding the namespace.
        self._events: dict[tuple[str, str, str], tuple[str, int]] = {}

    async def server_version(self) -> str:
        http = client_adapter.AsyncClient(self.single, client_adapter.ConnectionParams())
        async with http:
            response = await http.get("/version")
            response.raise_for_status()
            return str(response.json()["gitVersion"])

    async def kubernetes_service_env(self) -> dict[str, str]:
        """What a kubelet gives every container for the `kubernetes` Service."""
        svc = await self.client.get(Service, "kubernetes", namespace="default")
        ip = svc.spec.clusterIP if svc.spec else None
        ports = (svc.spec.ports if svc.spec else None) or []
        if not ip or not ports:
            return {}
        port = str(ports[0].port)
        return {
            "KUBERNETES_SERVICE_HOST": ip,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{ip}:{port}",
            "KUBERNETES_PORT_443_TCP": f"tcp://{ip}:{port}",
            "KUBERNETES_PORT_443_TCP_ADDR": ip,
            "KUBERNETES_PORT_443_TCP_PORT": port,
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        }

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            obj = await self.client.get(_KINDS[kind], name, namespace=namespace)
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise
        return _to_dict(obj, kind)

    async def get_pv(self, name: str) -> Obj | None:
        try:
            return _to_dict(await self.client.get(PersistentVolume, name), "PersistentVolume")
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        obj = await self.get(kind, namespace, name)
        return None if obj is None else decode_data(obj)

    async def token(self, pod: Obj, audience: str | None, expiration: int) -> str:
        meta = pod["metadata"]
        request = cast(
            ServiceAccountToken,
            ServiceAccount.Token.from_dict(
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "metadata": {},
                    "spec": {
                        "audiences": [audience] if audience else [],
                        "expirationSeconds": max(expiration, 600),
                        "boundObjectRef": {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": meta["name"],
                            "uid": meta["uid"],
                        },
                    },
                }
            ),
        )
        sa = pod["spec"].get("serviceAccountName") or "default"
        result = await self.client.create(request, sa, namespace=meta["namespace"])
        assert result.status is not None
        return str(result.status.token)

    async def patch_pod_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        await self.client.patch(
            Pod.Status,
            meta["name"],
            {"metadata": {"uid": meta["uid"]}, "status": status},
            namespace=meta["namespace"],
            patch_type=PatchType.MERGE,
        )

    async def delete_pod_now(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(Pod, meta["name"], namespace=meta["namespace"], grace_period=0)
        except ApiError as e:
            if e.status.code != 404:
                raise

    async def event(self, pod: Obj, reason: str, message: str, warning: bool = False) -> None:
        """Record a core/v1 Event about the pod, as a kubelet would; never raises."""
        meta = pod["metadata"]
        stamp = now()
        key = (meta["uid"], reason, message)
        if key in self._events:
            name, count = self._events[key]
            try:
                await self.client.patch(
                    Event, name, {"count": count + 1, "lastTimestamp": stamp},
                    namespace=meta["namespace"], patch_type=PatchType.MERGE,
                )  # fmt: skip
                self._events[key] = (name, count + 1)
                return
            except Exception:
                del self._events[key]
        if len(self._events) > 5000:
            self._events.clear()
        body = cast(
            Event,
            Event.from_dict(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "generateName": f"{meta['name']}.",
                        "namespace": meta["namespace"],
                    },
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "reason": reason,
                    "message": message,
                    "type": "Warning" if warning else "Normal",
                    "source": {"component": "kubelet", "host": self.node},
                    "reportingComponent": "kubelet",
                    "reportingInstance": self.node,
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                }
            ),
        )
        try:
            created = await self.client.create(body)
            if created.metadata and created.metadata.name:
                self._events[key] = (created.metadata.name, 1)
        except Exception as e:  # Events are best effort, like in a kubelet.
            log.debug("event %s for %s failed: %s", reason, meta["name"], e)


def _to_dict(obj: Any, kind: str) -> Obj:
    data: Obj = obj.to_dict()
    data.setdefault("kind", kind)
    return data
