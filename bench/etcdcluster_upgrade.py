"""Rolling upgrade timings on localcluster: total rollout time for 3 and 5 members, and the
longest time any client request waited while it ran.

A client puts sequential keys in a loop through all member URLs (failing over like any etcd
client) for the whole rollout; the figure is the longest a put waited from its first attempt to
its acknowledgement, retries of failed attempts included. Prints
figures; asserts nothing about speed. Needs the binaries built (`make localcluster`); brings
localcluster up if needed and runs its own operator.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _env import bench_namespace
from lightkube import AsyncClient

from etcd_operator.etcd import EtcdClient, EtcdConfig, EtcdError
from harness.clusters import (
    create_ready_cluster,
    eventually,
    get_cluster,
    member_urls,
    patch_spec,
)

UPGRADES = [("3.5.35", "3.6.16", "minor"), ("3.6.15", "3.6.16", "patch")]


async def _writer(endpoints: tuple[str, ...], stop: asyncio.Event, waits: list[float]) -> int:
    """Put sequential keys; a failed put is retried (same key and value: idempotent) until
    acknowledged, and the wait recorded is from its first attempt to the acknowledgement."""
    failed = 0
    config = EtcdConfig(endpoints=endpoints, dial_timeout=1.0, request_timeout=3.0)
    async with EtcdClient(config) as etcd:
        i = 0
        while not stop.is_set():
            start = time.monotonic()
            while True:
                try:
                    await etcd.put(f"bench/{i:07d}", "x")
                    break
                except EtcdError:
                    failed += 1
                    await asyncio.sleep(0.01)
            waits.append(time.monotonic() - start)
            i += 1
    return failed


async def _rolled_out(kube: AsyncClient, ns: str, name: str, version: str, replicas: int) -> bool:
    status = (await get_cluster(kube, ns, name)).get("status") or {}
    members = status.get("members") or []
    return (
        status.get("currentVersion") == version
        and status.get("phase") == "Running"
        and len(members) == replicas
        and all(m.get("version") == version and m.get("healthy") for m in members)
    )


async def _upgrade(kube: AsyncClient, ns: str, replicas: int, change: tuple[str, str, str]) -> None:
    old, new, kind = change
    name = f"u{replicas}{kind[0]}"
    await create_ready_cluster(kube, ns, name, {"replicas": replicas, "version": old}, timeout=300)
    stop = asyncio.Event()
    waits: list[float] = []
    writer = asyncio.create_task(_writer(member_urls(ns, name, range(replicas)), stop, waits))
    await asyncio.sleep(2)
    before = len(waits)
    start = time.monotonic()
    await patch_spec(kube, ns, name, {"version": new})
    await eventually(
        lambda: _rolled_out(kube, ns, name, new, replicas), 600, f"{name} at {new}", 0.2
    )
    took = time.monotonic() - start
    stop.set()
    failed = await writer
    during = waits[before:]
    print(
        f"{kind} upgrade {old} -> {new}, {replicas} members: {took:5.1f}s"
        f" ({took / replicas:.1f}s per member); client puts: {len(during)},"
        f" failed attempts {failed}, median {statistics.median(during) * 1000:.0f}ms,"
        f" longest wait {max(during):.2f}s"
    )


async def main() -> None:
    async with bench_namespace() as (kube, ns):
        for replicas in (3, 5):
            for change in UPGRADES:
                await _upgrade(kube, ns, replicas, change)


if __name__ == "__main__":
    asyncio.run(main())
