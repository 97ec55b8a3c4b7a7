"""EtcdBackups and EtcdRestores as e2e tests make and follow them: a claim to keep snapshots
on, a restore, an operation's body until it is final (Succeeded or Failed), and whether a
cluster is gone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import PersistentVolumeClaimSpec, VolumeResourceRequirements
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim

from etcd_operator.kube import EtcdClusterResource, EtcdRestoreResource
from harness.clusters import eventually

FINAL_PHASES = ("Succeeded", "Failed")


async def create_claim(
    kube: AsyncClient, namespace: str, name: str = "backups", size: str = "1Gi"
) -> None:
    """A ReadWriteOnce claim of the default class, e.g. for snapshots on a volume."""
    await kube.create(
        PersistentVolumeClaim(
            metadata=ObjectMeta(name=name, namespace=namespace),
            spec=PersistentVolumeClaimSpec(
                accessModes=["ReadWriteOnce"],
                resources=VolumeResourceRequirements(requests={"storage": size}),
            ),
        )
    )


async def create_restore(
    kube: AsyncClient, namespace: str, name: str, spec: Mapping[str, Any]
) -> None:
    """An EtcdRestore with `spec` as given (admission defaults and checks it)."""
    await kube.create(
        EtcdRestoreResource(metadata=ObjectMeta(name=name, namespace=namespace), spec=dict(spec))
    )


async def get_body(kube: AsyncClient, kind: Any, namespace: str, name: str) -> dict[str, Any]:
    got = await kube.get(kind, name, namespace=namespace)
    body: dict[str, Any] = got.to_dict()
    return body


async def final(
    kube: AsyncClient,
    kind: Any,
    namespace: str,
    name: str,
    *,
    within: float = 180.0,
    interval: float = 0.5,
) -> dict[str, Any]:
    """The body of an EtcdBackup or EtcdRestore once its phase is Succeeded or Failed
    (waiting `within` seconds at most)."""

    async def probe() -> dict[str, Any] | None:
        body = await get_body(kube, kind, namespace, name)
        return body if (body.get("status") or {}).get("phase") in FINAL_PHASES else None

    return await eventually(probe, within, f"{kind.__name__} {name} to finish", interval)


async def cluster_absent(kube: AsyncClient, namespace: str, name: str) -> bool:
    """Whether no EtcdCluster `name` exists (one being deleted still exists)."""
    try:
        await kube.get(EtcdClusterResource, name, namespace=namespace)
    except ApiError as e:
        return e.status.code == 404
    return False
