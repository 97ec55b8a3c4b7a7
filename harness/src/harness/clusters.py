"""Helpers for the operator's e2e tests and benchmarks: create clusters, wait for status,
talk to etcd, a scratch namespace."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Pod, Secret

from etcd_operator.etcd import Credentials, EtcdClient, EtcdConfig, EtcdError, TLSConfig
from etcd_operator.kube import EtcdClusterResource
from etcd_operator.naming import (
    PLAINTEXT,
    MemberTLS,
    client_tls_secret_name,
    client_url,
    member_name,
)
from etcd_operator.resources.secret import decode_data
from etcd_operator.tls.material import read_material

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float, what: str, interval: float = 0.5
) -> T:
    """Poll `probe` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = await probe()
        except (ApiError, EtcdError) as e:
            value, last = None, e
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


async def create_cluster(
    kube: AsyncClient, namespace: str, name: str, spec: Mapping[str, Any]
) -> None:
    body = EtcdClusterResource(metadata=ObjectMeta(name=name, namespace=namespace), spec=dict(spec))
    await kube.create(body)


async def get_cluster(kube: AsyncClient, namespace: str, name: str) -> dict[str, Any]:
    got = await kube.get(EtcdClusterResource, name, namespace=namespace)
    body: dict[str, Any] = got.to_dict()  # type: ignore[no-untyped-call]
    return body


async def patch_spec(kube: AsyncClient, namespace: str, name: str, spec: Mapping[str, Any]) -> None:
    from lightkube.types import PatchType

    await kube.patch(
        EtcdClusterResource,
        name,
        {"spec": dict(spec)},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


def condition(body: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


async def wait_ready(
    kube: AsyncClient, namespace: str, name: str, replicas: int, timeout: float = 180.0
) -> dict[str, Any]:
    """Until the cluster reports `replicas` healthy voters, all pods ready, in sync."""

    async def probe() -> dict[str, Any] | None:
        body = await get_cluster(kube, namespace, name)
        status = body.get("status") or {}
        members = status.get("members") or []
        available = condition(body, "Available")
        if (
            status.get("phase") == "Running"
            and status.get("leader")
            and status.get("readyReplicas") == replicas
            and len(members) == replicas
            and all(m.get("healthy") and not m.get("isLearner") for m in members)
            and available is not None
            and available.get("status") == "True"
        ):
            return body
        return None

    return await eventually(probe, timeout, f"{namespace}/{name} ready with {replicas} members")


async def create_ready_cluster(
    kube: AsyncClient, namespace: str, name: str, spec: Mapping[str, Any], timeout: float = 180.0
) -> dict[str, Any]:
    """Create a cluster and wait until it is ready with `spec["replicas"]` members."""
    await create_cluster(kube, namespace, name, spec)
    return await wait_ready(kube, namespace, name, int(spec["replicas"]), timeout)


def member_urls(
    namespace: str, name: str, ordinals: range | list[int], *, tls: bool = False
) -> tuple[str, ...]:
    """Client URLs of the members at `ordinals` (https with `tls`)."""
    scheme = MemberTLS(client=True) if tls else PLAINTEXT
    return tuple(client_url(member_name(name, i), name, namespace, tls=scheme) for i in ordinals)


async def client_tls(
    kube: AsyncClient, namespace: str, name: str, secret: str | None = None
) -> TLSConfig:
    """Client TLS from a Secret in the cert-manager layout, as an application mounting it
    would use it: by default the cluster's `<cluster>-client-tls` (mode Auto)."""
    got = await kube.get(Secret, secret or client_tls_secret_name(name), namespace=namespace)
    material = read_material(decode_data(got))
    return TLSConfig(ca_cert=material.ca, client_cert=material.cert, client_key=material.key)


def etcd_client(
    endpoints: tuple[str, ...],
    tls: TLSConfig | None = None,
    credentials: Credentials | None = None,
) -> EtcdClient:
    """A client of a cluster's members; `tls` (see `client_tls`) for https ones,
    `credentials` (e.g. `root_credentials`) with auth on."""
    return EtcdClient(
        EtcdConfig(
            endpoints=endpoints,
            tls=tls,
            credentials=credentials,
            dial_timeout=2.0,
            request_timeout=5.0,
        )
    )


async def root_credentials(
    kube: AsyncClient, namespace: str, name: str, secret: str | None = None
) -> Credentials:
    """Root's credentials from the cluster's root Secret (`secret`, default `<name>-root`)."""
    found = await kube.get(Secret, secret or f"{name}-root", namespace=namespace)
    encoded = (found.data or {})["password"]
    return Credentials("root", base64.b64decode(encoded).decode())


async def member_pods(kube: AsyncClient, namespace: str, name: str) -> list[Pod]:
    return [
        p
        async for p in kube.list(
            Pod, namespace=namespace, labels={"app.kubernetes.io/instance": name}
        )
    ]


@asynccontextmanager
async def scratch_namespace(
    kube: AsyncClient, prefix: str, labels: Mapping[str, str] | None = None
) -> AsyncIterator[str]:
    """A fresh namespace `<prefix>-<random>`; on exit its clusters are deleted first (an
    operator must still run to release their finalizers), then the namespace."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    await kube.create(
        Namespace(metadata=ObjectMeta(name=name, labels=dict(labels) if labels else None))
    )
    try:
        yield name
    finally:
        await delete_clusters(kube, name)
        await kube.delete(Namespace, name)


async def delete_clusters(kube: AsyncClient, namespace: str, timeout: float = 120.0) -> None:
    names = [
        c.metadata.name
        async for c in kube.list(EtcdClusterResource, namespace=namespace)
        if c.metadata and c.metadata.name
    ]
    for name in names:
        with contextlib.suppress(ApiError):
            await kube.delete(EtcdClusterResource, name, namespace=namespace)

    async def gone() -> bool:
        left = [c async for c in kube.list(EtcdClusterResource, namespace=namespace)]
        return not left

    await eventually(gone, timeout, f"clusters in {namespace} deleted")
