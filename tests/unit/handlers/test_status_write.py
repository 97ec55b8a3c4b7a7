"""The round's status write never touches the quorum-loss rebuild record (its steps write it)."""

from __future__ import annotations

from typing import Any

from etcd_operator.api import parse_cluster
from etcd_operator.handlers import etcdcluster
from etcd_operator.handlers.observe import World
from etcd_operator.handlers.recovery import RECORD_FIELD
from etcd_operator.planner import Decision, Reason, Wait
from unit.support.observed import cluster as observed_cluster


class _Kube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch(self, _kind: Any, _name: str, obj: dict[str, Any], **_: Any) -> None:
        self.patches.append(obj)


async def test_the_rebuild_record_a_step_wrote_is_not_erased_by_the_rounds_write() -> None:
    record = {"phase": "Forcing", "member": "demo-0", "memberID": "a1"}
    cluster = parse_cluster(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {"replicas": 3},
            "status": {RECORD_FIELD: record, "phase": "Running"},
        }
    )
    world = World(observed_cluster(3), {}, None, {})
    kube = _Kube()
    decision = Decision(Wait(Reason.POD_TERMINATING), Reason.POD_TERMINATING, "going")
    await etcdcluster._write_status(
        kube,  # type: ignore[arg-type]
        cluster,
        world,
        decision,
        error=None,
        objects_error=None,
        domain="cluster.local",
    )
    [patch] = kube.patches
    assert RECORD_FIELD not in patch["status"]
