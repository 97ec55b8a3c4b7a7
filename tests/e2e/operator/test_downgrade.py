"""Downgrading 3.6 -> 3.5 after an upgrade completed, with etcd's downgrade API
(planner/downgrade.py): a writer throughout, every acknowledged write read back, every member
at 3.5 and etcd's cluster version 3.5 at the end."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from lightkube import AsyncClient

from etcd_operator.resources.labels import ETCD_VERSION_ANNOTATION
from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
)
from harness.operator_process import OperatorProcess
from harness.waits import settled, wait_events
from harness.writer import writing

pytestmark = pytest.mark.e2e

NAME = "down"
OLD, NEW = "3.5.35", "3.6.16"


async def _everywhere(kube: AsyncClient, ns: str, version: str) -> bool:
    body = await get_cluster(kube, ns, NAME)
    status = body.get("status") or {}
    pods = await member_pods(kube, ns, NAME)
    versions = [
        (p.metadata.annotations or {}).get(ETCD_VERSION_ANNOTATION) for p in pods if p.metadata
    ]
    members = status.get("members") or []
    return (
        status.get("currentVersion") == version
        and status.get("phase") == "Running"
        and len(members) == 3
        and all(m.get("version") == version and m.get("healthy") for m in members)
        and versions == [version] * 3
    )


def _versions(url: str) -> dict[str, str]:
    """etcd's own /version: the member's binary and the cluster version."""
    with urllib.request.urlopen(f"{url}/version", timeout=5) as r:
        got: dict[str, str] = json.load(r)
        return got


async def test_downgrade_after_a_finished_upgrade_keeps_every_acknowledged_write(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    await create_ready_cluster(kube, ns, NAME, {"replicas": 3, "version": OLD})
    urls = member_urls(ns, NAME, range(3))
    async with writing(urls) as writer:
        await patch_spec(kube, ns, NAME, {"version": NEW})
        await eventually(lambda: _everywhere(kube, ns, NEW), 240, "every member at 3.6")

        async def cluster_version_moved() -> bool:
            try:
                v = await asyncio.to_thread(_versions, urls[0])
            except OSError:
                return False
            return v["etcdcluster"].startswith("3.6.")

        await eventually(cluster_version_moved, 60, "etcd's cluster version at 3.6")
        await patch_spec(kube, ns, NAME, {"version": OLD})
        await eventually(lambda: _everywhere(kube, ns, OLD), 240, "every member at 3.5")
    for url in urls:
        # A member just restarted may not have applied its log's cluster version yet.
        await settled(
            lambda u=url: asyncio.to_thread(_versions, u),
            lambda v: v["etcdserver"] == OLD and v["etcdcluster"].startswith("3.5."),
            30,
            f"{url} at {OLD} in a 3.5 cluster",
        )
    async with etcd_client(urls) as etcd:
        missing = await writer.missing(etcd)
    print(f"downgrade: {len(writer.acknowledged)} writes, {len(writer.failures)} not acknowledged")
    assert len(writer.acknowledged) > 100, len(writer.acknowledged)
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    # kopf posts Events from its own queue: the last may follow the status seen above.
    for reason in ("EnableDowngrade", "Downgrade"):
        await wait_events(kube, ns, lambda e, r=reason: e.reason == r, f"a {reason} Event")
