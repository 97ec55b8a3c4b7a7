"""Space on a real cluster: filled to a small quota it raises NOSPACE and recovers on its own
(compact, defragment one member at a time, disarm), losing no acknowledged write; then the
same cluster, given a fragmentation threshold, is defragmented while a client keeps writing
and reading without a single failure."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from lightkube import AsyncClient

from etcd_operator.etcd.errors import NoSpace
from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_urls,
    patch_spec,
)
from harness.operator_process import OperatorProcess
from harness.waits import wait_events
from harness.writer import writing

pytestmark = pytest.mark.e2e

NAME = "space"
QUOTA = 16 * 1024**2
BIG = "x" * (256 * 1024)


async def _status(kube: AsyncClient, namespace: str) -> dict[str, Any]:
    body = await get_cluster(kube, namespace, NAME)
    status: dict[str, Any] = body.get("status") or {}
    return status


async def _events(kube: AsyncClient, namespace: str, reason: str, count: int = 1) -> list[str]:
    """The messages of Events with `reason` once there are `count` (kopf posts them from its own
    queue, after the status a test waited for)."""
    found = await wait_events(
        kube, namespace, lambda e: e.reason == reason, f"{count} {reason} Events", count=count
    )
    return [e.message or "" for e in found]


async def test_a_full_cluster_recovers_alone_then_defragments_by_threshold_without_a_failure(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    spec = {"replicas": 3, "etcd": {"quotaBackendBytes": QUOTA}}
    await create_ready_cluster(kube, ns, NAME, spec)
    urls = member_urls(ns, NAME, range(3))
    written: dict[str, str] = {}
    maybe: tuple[str, str] = ("", "")
    async with etcd_client(urls) as etcd:
        # Fill: 256 KiB values over 8 keys, until etcd refuses every write.
        for n in range(200):
            key, value = f"big/{n % 8}", f"{n}:{BIG}"
            try:
                await etcd.put(key, value)
            except NoSpace:
                # The put that crosses the quota is applied, then answered NOSPACE (etcd's
                # quota applier; one refused before proposal is not): either value may stand.
                maybe = (key, value)
                break
            written[key] = value
        else:
            raise AssertionError("the quota was never reached")

        async def accepts_writes() -> bool:
            with contextlib.suppress(NoSpace):
                await etcd.put("after-nospace", "accepted")
                return True
            return False

        refused = time.monotonic()
        await eventually(accepts_writes, 120, "the cluster to accept writes again on its own")
        print(f"NOSPACE: writes accepted again {time.monotonic() - refused:.1f}s after refused")
        for key, value in written.items():
            got = await etcd.get(key)
            allowed = {value, maybe[1]} if key == maybe[0] else {value}
            assert got is not None and got.value.decode() in allowed, f"{key} lost"

    async def recovered() -> dict[str, Any] | None:
        status = await _status(kube, ns)
        maintenance = status.get("maintenance") or {}
        return status if not maintenance.get("alarms") and not maintenance.get("noSpace") else None

    status = await eventually(recovered, 30, "status to say the alarm is gone")
    assert status["maintenance"]["quotaBackendBytes"] == QUOTA
    run = status["maintenance"]["lastDefrag"]
    assert run["trigger"] == "NoSpace" and len(run["members"]) >= 3
    assert run["members"][-1]["name"] != run["members"][0]["name"]
    recovered_events = await _events(kube, ns, "SpaceRecovered")  # an Event says it too
    print(f"NOSPACE: {recovered_events[0]}")

    # Fragment the backend: history of large overwrites, then compacted as auto-compaction
    # would; the free pages stay in the file until a defragmentation.
    async with etcd_client(urls) as etcd:
        for n in range(28):
            await etcd.put(f"big/{n % 2}", f"{n}:{BIG}")
        await etcd.compact(await etcd.revision())

    async def grown() -> dict[str, int] | None:
        members = (await _status(kube, ns)).get("members") or []
        sizes = {m["name"]: m.get("dbSize") or 0 for m in members}
        return sizes if len(sizes) == 3 and all(v > 6 * 1024**2 for v in sizes.values()) else None

    before = await eventually(grown, 30, "status to show the grown backends")
    async with writing(urls, prefix="live", read_back=True) as client:
        await patch_spec(
            kube,
            ns,
            NAME,
            {"maintenance": {"defrag": {"fragmentationThreshold": 0.5, "minDBSize": "1Mi"}}},
        )

        async def shrunk() -> dict[str, Any] | None:
            status = await _status(kube, ns)
            run = (status.get("maintenance") or {}).get("lastDefrag") or {}
            done = {m["name"] for m in run.get("members", [])}
            sizes = {m["name"]: m.get("dbSize") or 0 for m in status.get("members", [])}
            if run.get("trigger") != "Threshold" or done != set(sizes):
                return None
            return status if all(sizes[n] < before[n] / 2 for n in sizes) else None

        asked = time.monotonic()
        status = await eventually(shrunk, 120, "every member defragmented by the threshold")
        print(f"threshold: every member done {time.monotonic() - asked:.1f}s after the patch")
        await asyncio.sleep(1)  # the client keeps going a little after the last one
    after = {m["name"]: m["dbSize"] for m in status["members"]}
    print(f"threshold: dbSize before {before}, after {after}; {len(client.acknowledged)} writes")
    assert not client.failures, client.failures[:5]
    assert len(client.acknowledged) > 20
    await _events(kube, ns, "Defragment", count=6)  # 3 for NOSPACE, 3 by threshold
    async with etcd_client(urls) as etcd:
        for key, value in client.acknowledged.items():
            got = await etcd.get(key)
            assert got is not None and got.value == value.encode(), f"{key} lost"
