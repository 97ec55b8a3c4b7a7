"""Scaling goes one member at a time through learners and never loses a written key."""

from __future__ import annotations

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import PersistentVolumeClaim

from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.waits import settled

pytestmark = pytest.mark.e2e


async def _write_and_check(namespace: str, size: int, written: dict[str, str], step: int) -> None:
    async with etcd_client(member_urls(namespace, "scale", range(size))) as etcd:
        for key, value in written.items():
            got = await etcd.get(key)
            assert got is not None and got.value == value.encode(), f"{key} lost after {step}"
        key = f"key-{step}"
        written[key] = f"value-{step}"
        await etcd.put(key, written[key])
        members = await etcd.member_list()
        assert len(members.voters) == size and not members.learners


async def test_scale_3_5_3_1_3_keeps_every_key(kube: AsyncClient, namespace: str) -> None:
    written: dict[str, str] = {}
    await create_ready_cluster(
        kube, namespace, "scale", {"replicas": 3, "pvcRetentionPolicy": {"whenScaled": "Delete"}}
    )
    await _write_and_check(namespace, 3, written, 0)
    for step, size in enumerate([5, 3, 1, 3], start=1):
        await patch_spec(kube, namespace, "scale", {"replicas": size})
        await wait_ready(kube, namespace, "scale", size, timeout=240)
        await _write_and_check(namespace, size, written, step)

        async def pod_names() -> list[str]:
            pods = await member_pods(kube, namespace, "scale")
            return sorted(p.metadata.name for p in pods if p.metadata and p.metadata.name)

        # A removed member's pod, deleted, stays listed until the node has stopped it.
        want = [f"scale-{i}" for i in range(size)]
        await settled(
            pod_names, lambda names, want=want: names == want, 60, f"the pods of {size} members"
        )
    claims = [c async for c in kube.list(PersistentVolumeClaim, namespace=namespace)]
    assert sorted(c.metadata.name for c in claims if c.metadata) == [
        f"scale-{i}" for i in range(3)
    ], "whenScaled=Delete removes the claims of removed members"
