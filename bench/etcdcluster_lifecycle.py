"""EtcdCluster timings on localcluster: create-to-Ready, scale-out per member, pod kill to Ready.

Prints figures; asserts nothing about speed. Needs the binaries built (`make localcluster`);
brings localcluster up if needed and runs its own operator. Each figure is split into what
etcd itself took (first member pod created -> all member pods Ready, probes included) and
the rest (the operator observing, planning and creating objects).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from _env import bench_namespace
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod

from harness.clusters import (
    create_ready_cluster,
    eventually,
    member_pods,
    patch_spec,
    wait_ready,
)


def _ready_since(pod: Pod) -> datetime | None:
    for c in (pod.status.conditions if pod.status else None) or []:
        if c.type == "Ready" and c.status == "True":
            return c.lastTransitionTime
    return None


async def _etcd_share(kube: AsyncClient, ns: str, name: str) -> float:
    """First pod created -> last pod Ready, from the API's own timestamps (1 s resolution)."""
    pods = await member_pods(kube, ns, name)
    created = min(p.metadata.creationTimestamp for p in pods if p.metadata)  # type: ignore[type-var]
    ready = [r for p in pods if (r := _ready_since(p)) is not None]
    return (max(ready) - created).total_seconds() if ready else float("nan")


async def _bootstrap(kube: AsyncClient, ns: str, replicas: int) -> None:
    name = f"b{replicas}"
    start = time.monotonic()
    await create_ready_cluster(kube, ns, name, {"replicas": replicas}, timeout=300)
    total = time.monotonic() - start
    etcd = await _etcd_share(kube, ns, name)
    print(
        f"create -> Ready, {replicas} member(s): {total:5.1f}s"
        f"  (pods created -> all Ready: {etcd:.0f}s)"
    )


async def _scale_out(kube: AsyncClient, ns: str) -> None:
    await create_ready_cluster(kube, ns, "s", {"replicas": 3})
    start = time.monotonic()
    await patch_spec(kube, ns, "s", {"replicas": 5})
    await wait_ready(kube, ns, "s", 5, timeout=300)
    took = time.monotonic() - start
    print(f"scale-out 3 -> 5: {took:5.1f}s  ({took / 2:.1f}s per member, learner add to promoted)")
    start = time.monotonic()
    await patch_spec(kube, ns, "s", {"replicas": 3})
    await wait_ready(kube, ns, "s", 3, timeout=300)
    took = time.monotonic() - start
    print(f"scale-in 5 -> 3:  {took:5.1f}s  ({took / 2:.1f}s per member)")


async def _pod_kill(kube: AsyncClient, ns: str) -> None:
    await create_ready_cluster(kube, ns, "k", {"replicas": 3})
    old = await kube.get(Pod, "k-1", namespace=ns)
    assert old.metadata is not None
    start = time.monotonic()
    await kube.delete(Pod, "k-1", namespace=ns)

    async def replaced() -> Any:
        pod = await kube.get(Pod, "k-1", namespace=ns)
        return pod.metadata is not None and pod.metadata.uid != old.metadata.uid  # type: ignore[union-attr]

    await eventually(replaced, 120, "k-1 recreated", interval=0.1)
    await wait_ready(kube, ns, "k", 3)
    print(f"pod deleted -> cluster Ready again: {time.monotonic() - start:5.1f}s")


async def main() -> None:
    async with bench_namespace() as (kube, ns):
        for replicas in (1, 3, 5):
            await _bootstrap(kube, ns, replicas)
        await _scale_out(kube, ns)
        await _pod_kill(kube, ns)


if __name__ == "__main__":
    asyncio.run(main())
