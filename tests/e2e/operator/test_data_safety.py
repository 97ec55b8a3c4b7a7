"""Data safety at the hand-offs, on real etcd and real volumes: what a volume holds is decided
from the records on its claim, never from whether etcd answers at that moment."""

from __future__ import annotations

import contextlib

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from etcd_operator.kube import EtcdClusterResource
from harness.clusters import (
    condition,
    create_cluster,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.waits import wait_events
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

MEMBER_ID = "etcd.operator.io/member-id"
RETIRED = "etcd.operator.io/retired"
CLUSTER_UID = "etcd.operator.io/cluster-uid"


async def _member_ids(namespace: str, name: str, size: int) -> dict[str, int]:
    async with etcd_client(member_urls(namespace, name, range(size))) as etcd:
        return {m.name: m.id for m in (await etcd.member_list()).members}


async def _claims(kube: AsyncClient, namespace: str) -> dict[str, PersistentVolumeClaim]:
    return {
        c.metadata.name: c
        async for c in kube.list(PersistentVolumeClaim, namespace=namespace)
        if c.metadata and c.metadata.name
    }


def _annotations(claim: PersistentVolumeClaim) -> dict[str, str]:
    return dict((claim.metadata.annotations if claim.metadata else None) or {})


async def test_outage_with_a_wiped_volume_replaces_that_member_and_loses_no_write(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    """Every member stops at once and one disk comes back empty. No member answers while the
    pods come back, so only the record on the claim can tell member-init that `safe-1` ran
    before: it must be refused and replaced, never rejoin under its old ID with an empty log."""
    ns = namespace
    await create_ready_cluster(kube, ns, "safe", {"replicas": 3})
    written = {f"k{i:03}": f"v{i}" for i in range(200)}
    async with etcd_client(member_urls(ns, "safe", range(3))) as etcd:
        for key, value in written.items():
            await etcd.put(key, value)
    before = await _member_ids(ns, "safe", 3)

    async def recorded() -> bool:
        claims = await _claims(kube, ns)
        return all(_annotations(claims[n]).get(MEMBER_ID) == f"{before[n]:x}" for n in before)

    await eventually(recorded, 30, "every claim to record its member's log")
    await patch_spec(kube, ns, "safe", {"paused": True})
    for pod in await member_pods(kube, ns, "safe"):
        assert pod.metadata is not None and pod.metadata.name is not None
        await kube.delete(Pod, pod.metadata.name, namespace=ns)

    async def all_gone() -> bool:
        return not await member_pods(kube, ns, "safe")

    await eventually(all_gone, 120, "every member pod to stop")
    faults.wipe_volume(localcluster.state, ns, "safe-1")
    await patch_spec(kube, ns, "safe", {"paused": False})

    async def replaced() -> bool:
        now = await _member_ids(ns, "safe", 3)
        return len(now) == 3 and now.get("safe-1") not in (None, before["safe-1"])

    await eventually(replaced, 240, "safe-1 to be replaced by a new member")
    await wait_ready(kube, ns, "safe", 3, timeout=180)
    after = await _member_ids(ns, "safe", 3)
    assert after["safe-0"] == before["safe-0"] and after["safe-2"] == before["safe-2"]
    async with etcd_client(member_urls(ns, "safe", range(3))) as etcd:
        for key, value in written.items():
            got = await etcd.get(key)
            assert got is not None and got.value == value.encode(), f"{key} lost"
    claims = await _claims(kube, ns)
    assert _annotations(claims["safe-1"]).get(RETIRED) == "true", "the wiped claim is kept"
    assert "safe-1-1" in claims, "the new member got a fresh claim of its own"


async def test_recreating_a_cluster_over_retained_claims_touches_none_of_them(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    """Claims kept by `whenDeleted: Retain` belong to the deleted cluster: a new EtcdCluster of
    the same name reports them and neither uses nor deletes them."""
    ns = namespace
    await create_ready_cluster(kube, ns, "again", {"replicas": 1})
    async with etcd_client(member_urls(ns, "again", range(1))) as etcd:
        await etcd.put("kept", "yes")
    old_uid = (await get_cluster(kube, ns, "again"))["metadata"]["uid"]
    await kube.delete(EtcdClusterResource, "again", namespace=ns)

    async def deleted() -> bool:
        names = [c.metadata.name async for c in kube.list(EtcdClusterResource, namespace=ns)]
        return not names and not await member_pods(kube, ns, "again")

    await eventually(deleted, 120, "the first cluster and its pods to go")
    volume = faults.volume_path(localcluster.state, ns, "again-0")
    await create_cluster(kube, ns, "again", {"replicas": 1})

    async def reported() -> dict[str, object] | None:
        body = await get_cluster(kube, ns, "again")
        degraded = condition(body, "Degraded")
        if degraded and degraded.get("reason") == "ForeignVolume":
            return dict(degraded)
        return None

    degraded = await eventually(reported, 60, "the retained claim to be reported")
    assert "again-0" in str(degraded["message"]) and old_uid in str(degraded["message"])
    # A Warning Event says it too (posted from kopf's queue, after the condition).
    await wait_events(
        kube, ns, lambda e: e.reason == "ForeignVolume" and e.type == "Warning", "ForeignVolume"
    )
    claims = await _claims(kube, ns)
    assert list(claims) == ["again-0"]
    labels = (claims["again-0"].metadata.labels if claims["again-0"].metadata else None) or {}
    assert labels.get(CLUSTER_UID) == old_uid, "the claim still records its own cluster"
    assert any((volume / "data" / "member" / "wal").glob("*.wal")), "its data is intact"
    assert not await member_pods(kube, ns, "again"), "no member was started on it"


async def test_scale_in_and_out_under_retain_keeps_the_removed_members_volume(
    kube: AsyncClient, namespace: str
) -> None:
    ns = namespace
    await create_ready_cluster(kube, ns, "keep", {"replicas": 3})
    await patch_spec(kube, ns, "keep", {"replicas": 2})
    await wait_ready(kube, ns, "keep", 2)

    async def retired() -> bool:
        claim = (await _claims(kube, ns)).get("keep-2")
        return claim is not None and _annotations(claim).get(RETIRED) == "true"

    await eventually(retired, 60, "keep-2's claim to be retired, not deleted")
    removed_id = _annotations((await _claims(kube, ns))["keep-2"])[MEMBER_ID]
    await patch_spec(kube, ns, "keep", {"replicas": 3})
    await wait_ready(kube, ns, "keep", 3, timeout=240)
    claims = await _claims(kube, ns)
    assert _annotations(claims["keep-2"])[MEMBER_ID] == removed_id, "the old volume is untouched"
    new_id = (await _member_ids(ns, "keep", 3))["keep-2"]
    assert f"{new_id:x}" != removed_id
    pod = await kube.get(Pod, "keep-2", namespace=ns)
    volumes = (pod.spec.volumes if pod.spec else None) or []
    assert [v.persistentVolumeClaim.claimName for v in volumes if v.persistentVolumeClaim] == [
        "keep-2-1"
    ]


async def test_scale_in_removes_the_crash_looping_member_rather_than_wait_for_it(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    """A member that keeps crashing must not block scaling in: with the rest keeping quorum,
    the operator removes exactly that member, not the highest ordinal."""
    ns = namespace
    await create_ready_cluster(kube, ns, "broken", {"replicas": 3})
    async with etcd_client(member_urls(ns, "broken", range(3))) as etcd:
        await etcd.put("before", "yes")
    before = await _member_ids(ns, "broken", 3)

    async def crash_looping() -> bool:
        with contextlib.suppress(LookupError):
            faults.kill_container(localcluster.state, ns, "broken-1", "etcd")
        pod = await kube.get(Pod, "broken-1", namespace=ns)
        statuses = (pod.status.containerStatuses if pod.status else None) or []
        return any(
            s.state and s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff"
            for s in statuses
        )

    await eventually(crash_looping, 120, "broken-1 to crash-loop", interval=1.0)
    await patch_spec(kube, ns, "broken", {"replicas": 2})

    async def removed() -> bool:
        with contextlib.suppress(LookupError):
            faults.kill_container(localcluster.state, ns, "broken-1", "etcd")
        async with etcd_client(member_urls(ns, "broken", [0, 2])) as etcd:
            names = {m.id for m in (await etcd.member_list()).members}
        return names == {before["broken-0"], before["broken-2"]}

    await eventually(removed, 120, "the crash-looping broken-1 to be the member removed")
    async with etcd_client(member_urls(ns, "broken", [0, 2])) as etcd:
        got = await etcd.get("before")
        assert got is not None and got.value == b"yes"


async def test_a_refusal_that_a_retry_cleared_does_not_replace_a_healthy_member(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    """member-init refuses once (the disk was briefly not there), the node retries it, it passes
    and the member runs. The old refusal stays in the init container's lastState: it must not
    make the operator replace a member that answers."""
    ns = namespace
    await create_ready_cluster(kube, ns, "flag", {"replicas": 3})
    await kube.delete(Pod, "flag-1", namespace=ns)  # recreated with --member-id by the operator

    async def recreated_with_its_id() -> dict[str, object] | None:
        pod = await kube.get(Pod, "flag-1", namespace=ns)
        body: dict[str, object] = pod.to_dict()  # type: ignore[no-untyped-call]
        init = (pod.spec.initContainers if pod.spec else None) or []
        has_id = any(a.startswith("--member-id=") for c in init for a in c.args or [])
        return body if has_id and not (pod.metadata and pod.metadata.deletionTimestamp) else None

    body = await eventually(recreated_with_its_id, 90, "flag-1 recreated expecting its log")
    await wait_ready(kube, ns, "flag", 3)
    before = await _member_ids(ns, "flag", 3)

    await patch_spec(kube, ns, "flag", {"paused": True})
    await kube.delete(Pod, "flag-1", namespace=ns)

    async def gone() -> bool:
        return "flag-1" not in {
            p.metadata.name for p in await member_pods(kube, ns, "flag") if p.metadata
        }

    await eventually(gone, 90, "flag-1 to stop")
    data = faults.volume_path(localcluster.state, ns, "flag-1") / "data"
    aside = data.with_name("data.aside")
    data.rename(aside)
    meta = dict(body["metadata"])  # type: ignore[call-overload]
    spec = dict(body["spec"])  # type: ignore[call-overload]
    spec.pop("nodeName", None)
    keep = ("name", "namespace", "labels", "annotations", "ownerReferences")
    await kube.create(
        Pod.from_dict({"metadata": {k: meta[k] for k in keep if k in meta}, "spec": spec})
    )

    async def refused() -> bool:
        pod = await kube.get(Pod, "flag-1", namespace=ns)
        for s in (pod.status.initContainerStatuses if pod.status else None) or []:
            for state in (s.state, s.lastState):
                if state and state.terminated and state.terminated.exitCode == 43:
                    return True
        return False

    await eventually(refused, 90, "member-init to refuse the missing log")
    aside.rename(data)

    async def running_with_the_old_refusal_on_record() -> bool:
        pod = await kube.get(Pod, "flag-1", namespace=ns)
        (init,) = (pod.status.initContainerStatuses if pod.status else None) or []
        last = init.lastState.terminated if init.lastState else None
        now = init.state.terminated if init.state else None
        ready = any(
            c.type == "Ready" and c.status == "True"
            for c in (pod.status.conditions if pod.status else None) or []
        )
        return (
            ready
            and now is not None
            and now.exitCode == 0
            and last is not None
            and last.exitCode == 43
        )

    await eventually(running_with_the_old_refusal_on_record, 120, "flag-1 to run after a retry")
    await patch_spec(kube, ns, "flag", {"paused": False})

    async def reconciled_after_resume() -> bool:
        cluster = await get_cluster(kube, ns, "flag")
        progressing = condition(cluster, "Progressing")
        return bool(
            progressing
            and progressing.get("reason") == "InSync"
            and progressing.get("observedGeneration") == cluster["metadata"]["generation"]
        )

    await eventually(reconciled_after_resume, 90, "the operator to reconcile after the pause")
    assert await _member_ids(ns, "flag", 3) == before, "no healthy member was replaced"
