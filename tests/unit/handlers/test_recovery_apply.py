"""The shell's side of a rebuild from a survivor: status records it before the survivor's
pod is touched, the pod comes back flagged, and the flagged pod goes once etcd shows it alone."""

from __future__ import annotations

from typing import Any

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from etcd_operator import rbac
from etcd_operator.handlers import apply
from etcd_operator.handlers.observe import EtcdSession, World, observe
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.planner import (
    ClusterState,
    EndForcedStart,
    ForceNewCluster,
    InitialCluster,
)
from etcd_operator.resources.labels import FORCE_NEW_CLUSTER_ANNOTATION
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient

STEP = ForceNewCluster(
    "demo-0",
    0x1A,
    ("demo-1", "demo-2"),
    "3.5.17",
    InitialCluster(ClusterState.EXISTING, (("demo-0", "http://demo-0.demo.ns.svc:2380"),), "t"),
    claim="demo-0",
)


def _granted() -> set[tuple[str, str, str]]:
    return {(r.group, r.resource, r.verb) for r in rbac.declared() if not r.operator_namespace}


async def _world(kube: RecordingClient, pods: dict[str, Pod]) -> World:
    seen = await observe(
        kube,  # type: ignore[arg-type]
        make_cluster(replicas=3),
        deleting=False,
        etcd=EtcdSession(),
        domain=DEFAULT_CLUSTER_DOMAIN,
    )
    return World(seen.observed, pods, None, {})


def _pod(forced: bool) -> Pod:
    annotations = {FORCE_NEW_CLUSTER_ANNOTATION: "true"} if forced else {}
    return Pod(metadata=ObjectMeta(name="demo-0", annotations=annotations))


async def _apply(kube: RecordingClient, world: World, step: Any) -> None:
    await apply.apply_step(
        kube,  # type: ignore[arg-type]
        make_cluster(replicas=3),
        world,
        step,
        cluster_domain=DEFAULT_CLUSTER_DOMAIN,
    )


def _record(written: tuple[str, Any]) -> dict[str, Any]:
    verb, patch = written
    assert verb == "patch", written
    record: dict[str, Any] = patch["status"]["quorumLossRecovery"]
    return record


async def test_force_records_then_takes_the_plain_pod_down() -> None:
    kube = RecordingClient({})
    await _apply(kube, await _world(kube, {"demo-0": _pod(forced=False)}), STEP)
    record = _record(kube.written[0])
    assert record["phase"] == "Forcing" and record["memberID"] == "1a"
    assert record["lostMembers"] == ["demo-1", "demo-2"]
    assert kube.written[1:] == [("delete", (Pod, "demo-0"))]
    assert kube.calls <= _granted(), kube.calls - _granted()


async def test_force_creates_the_flagged_pod_once_the_old_one_is_gone() -> None:
    kube = RecordingClient({})
    await _apply(kube, await _world(kube, {}), STEP)
    pods = [obj for verb, obj in kube.written if verb == "create" and isinstance(obj, Pod)]
    assert len(pods) == 1
    pod = pods[0]
    assert pod.metadata is not None and pod.spec is not None
    assert (pod.metadata.annotations or {}).get(FORCE_NEW_CLUSTER_ANNOTATION) == "true"
    etcd = next(c for c in pod.spec.containers if c.name == "etcd")
    assert "--force-new-cluster" in (etcd.args or [])
    assert kube.calls <= _granted(), kube.calls - _granted()


async def test_a_flagged_pod_is_never_taken_down_by_the_force_step() -> None:
    kube = RecordingClient({})
    await _apply(kube, await _world(kube, {"demo-0": _pod(forced=True)}), STEP)
    assert [verb for verb, _ in kube.written] == ["patch"]


async def test_end_records_recovered_then_deletes_only_a_flagged_pod() -> None:
    kube = RecordingClient({})
    await _apply(
        kube, await _world(kube, {"demo-0": _pod(forced=True)}), EndForcedStart("demo-0", 0x1A)
    )
    assert _record(kube.written[0])["phase"] == "Recovered"
    assert kube.written[1:] == [("delete", (Pod, "demo-0"))]
    kube = RecordingClient({})
    await _apply(
        kube, await _world(kube, {"demo-0": _pod(forced=False)}), EndForcedStart("demo-0", 0x1A)
    )
    assert [verb for verb, _ in kube.written] == ["patch"]
