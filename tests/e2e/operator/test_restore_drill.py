"""Restore drills against localcluster: an EtcdBackup on a claim is restored into a throwaway
one-member cluster owned by the drill, checked against the revision and key count the backup
recorded, and deleted; the same backup altered on the claim fails the drill loudly before any
cluster exists; an operator started afterwards exports both results from status alone."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from prometheus_client.parser import text_string_to_metric_families

from etcd_operator.api import GROUP
from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource, EtcdRestoreResource
from harness.clusters import (
    condition,
    create_ready_cluster,
    etcd_client,
    eventually,
    member_pods,
    member_urls,
)
from harness.operations import cluster_absent, create_claim, create_restore, final, get_body
from harness.operator_process import OperatorProcess
from harness.waits import settled, wait_events
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

KEYS = 300


async def _drill(kube: AsyncClient, namespace: str, name: str, cluster: str) -> None:
    spec = {
        "source": {"backup": {"name": "nightly"}},
        # Asks for three members on claims: a drill makes it one on an emptyDir.
        "cluster": {"name": cluster, "spec": {"replicas": 3}},
        "drill": True,
    }
    await create_restore(kube, namespace, name, spec)


async def _gone(kube: AsyncClient, namespace: str, cluster: str) -> bool:
    return await cluster_absent(kube, namespace, cluster) and not await member_pods(
        kube, namespace, cluster
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drill_samples(port: int, namespace: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("etcd_operator_restore_drill_")
        and s.labels == {"namespace": namespace, "name": "src"}
    }


async def test_a_drill_passes_on_a_good_backup_and_fails_loudly_on_an_altered_one(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster, operator: OperatorProcess
) -> None:
    ns = namespace
    await create_claim(kube, ns)
    await create_ready_cluster(kube, ns, "src", {"replicas": 1})
    async with etcd_client(member_urls(ns, "src", [0])) as etcd:
        for start in range(0, KEYS, 100):
            await asyncio.gather(
                *(etcd.put(f"/drill/{i:04d}", f"v{i}") for i in range(start, start + 100))
            )
        # Overwrites move the revision, not the key count: the two checks differ.
        revision = max(
            await asyncio.gather(*(etcd.put(f"/drill/{i:04d}", "again") for i in range(20)))
        )
    await kube.create(
        EtcdBackupResource(
            metadata=ObjectMeta(name="nightly", namespace=ns),
            spec={"clusterName": "src", "destination": {"volume": {"claimName": "backups"}}},
        )
    )
    backup = (await final(kube, EtcdBackupResource, ns, "nightly", interval=0.3))["status"]
    assert backup["phase"] == "Succeeded", backup
    assert (backup["revision"], backup["keys"]) == (revision, KEYS)

    # A good backup: the throwaway cluster is one member on an emptyDir, owned by the drill.
    await _drill(kube, ns, "drill-good", "thrown")

    async def throwaway() -> dict[str, Any] | None:
        return (
            None
            if await cluster_absent(kube, ns, "thrown")
            else await get_body(kube, EtcdClusterResource, ns, "thrown")
        )

    cluster = await eventually(throwaway, 120, "the throwaway cluster", interval=0.2)
    assert cluster["spec"]["replicas"] == 1 and cluster["spec"]["storage"]["emptyDir"] is True
    assert cluster["metadata"]["labels"][f"{GROUP}/restore-drill"] == "drill-good"
    (owner,) = cluster["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("EtcdRestore", "drill-good")
    body = await final(kube, EtcdRestoreResource, ns, "drill-good", interval=0.3)
    drill = body["status"]["drill"]
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert drill["result"] == "Passed", drill
    assert drill["expectedRevision"] == drill["servedRevision"] == revision
    assert drill["expectedKeys"] == drill["servedKeys"] == KEYS
    assert drill["sourceCluster"] == "src"
    passed = condition(body, "DrillPassed")
    assert passed is not None and passed["status"] == "True"
    # Gone afterwards: the cluster at once (the drill ends after it), its pod soon after.
    assert await cluster_absent(kube, ns, "thrown")
    await eventually(lambda: _gone(kube, ns, "thrown"), 60, "the throwaway pod gone")
    passed_at = datetime.fromisoformat(drill["completionTime"].replace("Z", "+00:00"))

    # The same backup, altered on the claim: refused by the verification, no cluster made.
    inside = backup["location"].removeprefix("file:///backup/")
    stored = faults.volume_path(localcluster.state, ns, "backups") / inside
    _flip_a_byte(stored)
    await _drill(kube, ns, "drill-altered", "never")
    body = await final(kube, EtcdRestoreResource, ns, "drill-altered", interval=0.3)
    drill = body["status"]["drill"]
    assert body["status"]["phase"] == "Failed" and drill["result"] == "Failed", drill
    assert drill["reason"] == "SHA256Mismatch", drill
    failed = condition(body, "DrillPassed")
    assert failed is not None and failed["status"] == "False"
    # kopf posts the Warning from its own queue, possibly after the Failed status just seen.
    await wait_events(
        kube,
        ns,
        lambda e: (
            e.type == "Warning" and e.reason == "SHA256Mismatch" and "refused" in (e.message or "")
        ),
        "a SHA256Mismatch Warning saying the backup was refused",
        involved="drill-altered",
    )
    assert await _gone(kube, ns, "never")

    # An operator started now knows both results from status alone: the latest drill failed,
    # the last that passed is the good one.
    port = _free_port()
    operator.stop()
    metered = OperatorProcess(
        localcluster.state,
        "drill-metrics",
        namespaces=(ns,),
        extra_args=["--metrics-port", str(port)],
    )
    metered.start()
    expected = {
        "etcd_operator_restore_drill_last_result": 0.0,
        "etcd_operator_restore_drill_last_success_timestamp_seconds": passed_at.timestamp(),
    }
    try:
        # The new operator reports each restore at its first round, in no fixed order: the good
        # drill alone shows result 1 until the altered one is reported, so wait for both.
        await settled(
            lambda: asyncio.to_thread(_drill_samples, port, ns),
            lambda samples: samples == expected,
            60,
            f"the drill metrics {expected}",
        )
    finally:
        metered.stop()
        operator.start()


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
