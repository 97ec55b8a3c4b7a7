"""Replacing members by fresh ones (planner/replace.py): a chosen member on request, under a
client writing throughout; a member whose data was altered on disk, found by HashKV, then one
etcd raised its CORRUPT alarm for; members whose claims cannot grow, onto new claims of the
new size."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import pytest
from aetcd import rpc as pb
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
from lightkube.resources.storage_v1 import StorageClass
from lightkube.types import PatchType

from etcd_operator.etcd import EtcdError
from etcd_operator.kube import EtcdClusterResource
from harness.clusters import (
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.waits import settled, wait_events
from harness.writer import writing
from localcluster import faults
from localcluster.cluster import LocalCluster

pytestmark = pytest.mark.e2e

REPLACE = "etcd.operator.io/replace-member"
RETIRED = "etcd.operator.io/retired"


async def _ids(urls: tuple[str, ...]) -> dict[str, tuple[int, bool]]:
    async with etcd_client(urls) as etcd:
        return {m.name: (m.id, m.is_learner) for m in (await etcd.member_list()).members}


async def _claims(kube: AsyncClient, ns: str) -> dict[str, PersistentVolumeClaim]:
    return {
        c.metadata.name: c
        async for c in kube.list(PersistentVolumeClaim, namespace=ns)
        if c.metadata and c.metadata.name
    }


async def _annotate(kube: AsyncClient, ns: str, name: str, value: str | None) -> None:
    await kube.patch(
        EtcdClusterResource,
        name,
        {"metadata": {"annotations": {REPLACE: value}}},
        namespace=ns,
        patch_type=PatchType.MERGE,
    )


async def test_the_middle_member_of_five_is_replaced_on_request_losing_no_acknowledged_write(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "swap"
    await create_ready_cluster(kube, ns, name, {"replicas": 5})
    urls = member_urls(ns, name, range(5))
    before = await _ids(urls)
    chosen = f"{name}-2"  # the middle one of five
    started = time.monotonic()
    async with writing(urls) as writer:
        await _annotate(kube, ns, name, chosen)

        async def replaced() -> bool:
            now = await _ids(urls)
            return (
                len(now) == 5
                and now.get(chosen, (before[chosen][0], True))[0] != before[chosen][0]
                and not any(learner for _, learner in now.values())
            )

        await eventually(replaced, 180, f"{chosen} to be replaced by a voting new member")
        await wait_ready(kube, ns, name, 5)
    took = time.monotonic() - started
    print(
        f"replace: {took:.1f}s, {len(writer.acknowledged)} writes acknowledged,"
        f" {len(writer.failures)} failed"
    )
    after = await _ids(urls)
    assert set(after) == set(before)
    assert {n: i for n, i in after.items() if n != chosen} == {
        n: i for n, i in before.items() if n != chosen
    }, "the other members are untouched"
    assert writer.acknowledged, "the writer made progress"
    async with etcd_client(urls) as etcd:
        for key, value in writer.acknowledged.items():
            got = await etcd.get(key)
            assert got is not None and got.value == value.encode(), f"{key} lost"
    body = await get_cluster(kube, ns, name)
    record = (body.get("status") or {}).get("replacement") or {}
    assert record == {"request": chosen, "member": chosen, "memberID": f"{before[chosen][0]:x}"}
    claims = await _claims(kube, ns)
    old = claims[chosen]
    assert ((old.metadata.annotations if old.metadata else None) or {}).get(RETIRED) == "true"
    assert f"{chosen}-1" in claims, "the fresh member got a fresh claim"
    # The request stays handled: nothing more is replaced; removing it clears the record.
    await _annotate(kube, ns, name, None)

    async def cleared() -> bool:
        status = (await get_cluster(kube, ns, name)).get("status") or {}
        return "replacement" not in status

    await eventually(cleared, 60, "status.replacement to go with the annotation")
    assert await _ids(urls) == after


async def _claim_size(kube: AsyncClient, ns: str, claim: str) -> str:
    pvc = await kube.get(PersistentVolumeClaim, claim, namespace=ns)
    assert pvc.spec is not None and pvc.spec.resources is not None
    return (pvc.spec.resources.requests or {}).get("storage", "")


async def test_members_whose_claims_cannot_grow_move_to_new_claims_one_at_a_time(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "move"
    storage_class = f"fixed-{uuid.uuid4().hex[:6]}"
    await kube.create(
        StorageClass(
            metadata=ObjectMeta(name=storage_class),
            provisioner="kubernetes.io/host-path",
            reclaimPolicy="Delete",
            volumeBindingMode="Immediate",
            allowVolumeExpansion=False,
        )
    )
    try:
        spec = {"replicas": 2, "storage": {"storageClassName": storage_class}}
        await create_ready_cluster(kube, ns, name, spec)
        urls = member_urls(ns, name, range(2))
        async with etcd_client(urls) as etcd:
            await etcd.put("kept", "yes")
        before = await _ids(urls)
        started = time.monotonic()
        await patch_spec(kube, ns, name, {"storage": {"size": "2Gi"}})

        async def moved() -> bool:
            now = await _ids(urls)
            return (
                len(now) == 2
                and all(now.get(n, before[n])[0] != before[n][0] for n in before)
                and not any(learner for _, learner in now.values())
            )

        await eventually(moved, 240, "both members to be replaced")
        await wait_ready(kube, ns, name, 2)
        print(f"growth by replacement: {time.monotonic() - started:.1f}s")
        for n in before:
            assert await _claim_size(kube, ns, f"{n}-1") == "2Gi"
            assert await _claim_size(kube, ns, n) == "1Gi", "the old claim is kept as it was"
        async with etcd_client(urls) as etcd:
            got = await etcd.get("kept")
        assert got is not None and got.value == b"yes"
    finally:
        with contextlib.suppress(ApiError):
            await kube.delete(StorageClass, storage_class)


TRUE = b"payload-0123456789-true"
FALSE = b"payload-0123456789-fals"  # same length: only bytes change in the bbolt file


def _alter_in_place(volume: Path) -> None:
    dbs = list(volume.glob("**/member/snap/db"))
    assert len(dbs) == 1, dbs
    data = bytearray(dbs[0].read_bytes())
    at = data.find(TRUE)
    assert at >= 0 and data.find(TRUE, at + 1) < 0, "exactly one copy of the value on disk"
    data[at : at + len(FALSE)] = FALSE
    dbs[0].write_bytes(bytes(data))


async def test_a_member_whose_data_was_altered_on_disk_is_found_by_hash_kv_and_replaced(
    kube: AsyncClient, namespace: str, localcluster: LocalCluster
) -> None:
    ns, name = namespace, "rot"
    victim = f"{name}-2"
    await create_ready_cluster(kube, ns, name, {"replicas": 3})
    urls = member_urls(ns, name, range(3))
    async with etcd_client(urls) as etcd:
        for i in range(20):
            await etcd.put(f"k{i}", f"v{i}")
        await etcd.put("victim", TRUE.decode())

        async def everywhere() -> bool:
            got = [await etcd.get("victim", serializable=True, endpoint=u) for u in urls]
            return all(g is not None and g.value == TRUE for g in got)

        await eventually(everywhere, 30, "every member to hold the value")
    before = await _ids(urls)
    # The member stops (a graceful stop commits its backend), its file is altered, it starts
    # again on it with its own member ID: etcd checks nothing at start.
    await patch_spec(kube, ns, name, {"paused": True})
    await kube.delete(Pod, victim, namespace=ns)

    async def stopped() -> bool:
        pods = await member_pods(kube, ns, name)
        return all(p.metadata is not None and p.metadata.name != victim for p in pods)

    await eventually(stopped, 90, f"{victim}'s pod to stop")
    _alter_in_place(faults.volume_path(localcluster.state, ns, victim))
    await patch_spec(kube, ns, name, {"paused": False})

    async def serves_altered() -> bool:
        async with etcd_client(urls) as etcd:
            got = await etcd.get("victim", serializable=True, endpoint=urls[2])
        return got is not None and got.value == FALSE

    # (status still says Running from before the pause: ask the member itself)
    await eventually(serves_altered, 120, f"{victim} to serve the altered value")
    await wait_ready(kube, ns, name, 3)
    assert await _ids(urls) == before, f"{victim} rejoined as itself"

    started = time.monotonic()
    schedule = {"maintenance": {"corruptionCheck": {"schedule": "0 3 * * *"}}}
    await patch_spec(kube, ns, name, schedule)  # no check on record: the first one runs now

    async def replaced() -> bool:
        now = await _ids(urls)
        return (
            len(now) == 3
            and now.get(victim, before[victim])[0] != before[victim][0]
            and not any(learner for _, learner in now.values())
        )

    await eventually(replaced, 180, f"{victim} to be replaced from the majority")
    await wait_ready(kube, ns, name, 3)
    print(f"corruption: replaced {time.monotonic() - started:.1f}s after the check was enabled")
    after = await _ids(urls)
    assert {n: i for n, i in after.items() if n != victim} == {
        n: i for n, i in before.items() if n != victim
    }, "the majority is untouched"
    async with etcd_client(urls) as etcd:
        for url in urls:
            # A serializable read answers from what the member has applied: the fresh one may
            # still be applying the log it was sent when promoted.
            await settled(
                lambda u=url: etcd.get("victim", serializable=True, endpoint=u),
                lambda got: got is not None and got.value == TRUE,
                30,
                f"{url} to serve the majority's value",
            )

    async def agreeing() -> dict[str, object] | None:
        status = (await get_cluster(kube, ns, name)).get("status") or {}
        check = status.get("corruptionCheck") or {}
        return check if check and not check.get("diverged") else None

    await eventually(agreeing, 60, "the next check to find every member agreeing")
    await wait_events(
        kube,
        ns,
        lambda e: (
            e.reason == "ReplaceCorruptMember"
            and e.type == "Warning"
            and victim in (e.message or "")
        ),
        f"a ReplaceCorruptMember Warning naming {victim}",
    )

    # Then etcd's own CORRUPT alarm on a follower (one cluster for both stories: lean): etcd
    # refuses every write until it is disarmed; the operator replaces the member it names
    # and only then disarms it.
    await _corrupt_alarm_is_resolved_by_replacing_its_member(kube, ns, name, urls)


async def _raise_corrupt(url: str, member_id: int) -> None:
    """Maintenance.Alarm(ACTIVATE, CORRUPT) for `member_id`, as etcd's hash check raises it."""
    async with etcd_client((url,)) as etcd:
        conn = await etcd.connect(url)
        request = pb.AlarmRequest(
            action=pb.AlarmRequest.ACTIVATE, memberID=member_id, alarm=pb.CORRUPT
        )
        await conn.stub("maintenance").Alarm(request, timeout=10)


async def _corrupt_alarm_is_resolved_by_replacing_its_member(
    kube: AsyncClient, ns: str, name: str, urls: tuple[str, ...]
) -> None:
    before = await _ids(urls)
    async with etcd_client(urls) as etcd:
        leader = (await etcd.status(urls[0])).leader
    alarmed = next(n for n, (i, _) in sorted(before.items()) if i != leader)
    alarmed_id = before[alarmed][0]
    started = time.monotonic()
    async with writing(urls, prefix="c") as writer:
        await _raise_corrupt(urls[0], alarmed_id)

        async def refused() -> bool:
            async with etcd_client(urls) as etcd:
                try:
                    await etcd.put("refused", "x")
                except EtcdError as e:
                    return "corrupt cluster" in str(e)
            return False

        await eventually(refused, 10, "etcd to refuse writes under CORRUPT")

        async def resolved() -> bool:
            now = await _ids(urls)
            async with etcd_client(urls) as etcd:
                alarms = await etcd.alarms()
            return (
                not alarms
                and len(now) == 3
                and now.get(alarmed, (alarmed_id, True))[0] != alarmed_id
                and not any(learner for _, learner in now.values())
            )

        await eventually(resolved, 180, f"{alarmed} replaced and CORRUPT disarmed")
        await wait_ready(kube, ns, name, 3)
        resumed = len(writer.acknowledged)

        async def writing_again() -> bool:
            return len(writer.acknowledged) > resumed + 5

        await eventually(writing_again, 30, "writes to be acknowledged again")
    took = time.monotonic() - started
    print(
        f"CORRUPT: {alarmed} replaced and the alarm disarmed in {took:.1f}s;"
        f" {len(writer.acknowledged)} writes acknowledged, {len(writer.failures)} refused"
    )
    assert any("corrupt cluster" in f for f in writer.failures), "writes were refused meanwhile"
    after = await _ids(urls)
    assert {n: i for n, i in after.items() if n != alarmed} == {
        n: i for n, i in before.items() if n != alarmed
    }, "only the alarmed member was replaced"
    async with etcd_client(urls) as etcd:
        assert await writer.missing(etcd) == [], "acknowledged writes lost"
    # kopf posts Events from its own queue: the disarm's may follow what etcd showed.
    await wait_events(
        kube,
        ns,
        lambda e: (
            e.reason == "ReplaceAlarmedMember"
            and e.type == "Warning"
            and alarmed in (e.message or "")
        ),
        f"a ReplaceAlarmedMember Warning naming {alarmed}",
    )
    await wait_events(kube, ns, lambda e: e.reason == "CorruptDisarmed", "a CorruptDisarmed Event")
