"""Killing the operator in the middle of a scale operation never duplicates members or
loses quorum: the next operator finishes from what it observes."""

from __future__ import annotations

import asyncio

import pytest
from lightkube import AsyncClient

from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


async def _last_operation(kube: AsyncClient, ns: str) -> str:
    body = await get_cluster(kube, ns, "crash")
    return str(((body.get("status") or {}).get("lastOperation") or {}).get("type", ""))


@pytest.mark.parametrize(
    ("start", "target", "kill_after"),
    [(1, 3, "AddLearner"), (3, 1, "RemoveMember")],
    ids=["mid-scale-out", "mid-scale-in"],
)
async def test_operator_killed_mid_scale_converges_without_duplicates(
    kube: AsyncClient,
    namespace: str,
    operator: OperatorProcess,
    start: int,
    target: int,
    kill_after: str,
) -> None:
    await create_ready_cluster(kube, namespace, "crash", {"replicas": start})
    async with etcd_client(member_urls(namespace, "crash", range(start))) as etcd:
        await etcd.put("survivor", "yes")

    await patch_spec(kube, namespace, "crash", {"replicas": target})

    async def step_taken() -> bool:
        return await _last_operation(kube, namespace) == kill_after

    await eventually(step_taken, 120, f"the operator to take a {kill_after} step", 0.1)
    operator.kill()
    await asyncio.sleep(3)  # the world moves on without an operator
    operator.start()

    await wait_ready(kube, namespace, "crash", target, timeout=240)
    async with etcd_client(member_urls(namespace, "crash", range(target))) as etcd:
        members = await etcd.member_list()
        names = [m.name for m in members.members]
        assert len(names) == len(set(names)) == target
        got = await etcd.get("survivor")
        assert got is not None and got.value == b"yes"
