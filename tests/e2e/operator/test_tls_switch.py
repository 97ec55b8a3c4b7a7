"""Turning TLS on in a running plaintext cluster, under continuous writes: no failed request,
no acknowledged write lost, no member replaced (planner/tls_switch.py)."""

from __future__ import annotations

import asyncio

import pytest
from lightkube import AsyncClient

from etcd_operator.etcd import EtcdError
from etcd_operator.resources.pod import served_tls
from harness.clusters import (
    client_tls,
    condition,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
)
from harness.operator_process import OperatorProcess
from harness.writer import writing

pytestmark = pytest.mark.e2e

NAME = "live"


async def _pods_serve(kube: AsyncClient, namespace: str, *, peer: bool, plaintext: bool) -> bool:
    pods = await member_pods(kube, namespace, NAME)
    served = [served_tls(p)[0] for p in pods if not (p.metadata and p.metadata.deletionTimestamp)]
    return len(served) == 3 and all(
        t.peer == peer and t.client and t.client_plaintext == plaintext for t in served
    )


async def _settled(kube: AsyncClient, namespace: str, *, plaintext: bool) -> bool:
    body = await get_cluster(kube, namespace, NAME)
    progressing = condition(body, "Progressing")
    return (
        progressing is not None
        and progressing["status"] == "False"
        and await _pods_serve(kube, namespace, peer=True, plaintext=plaintext)
    )


async def test_a_plaintext_cluster_is_switched_to_tls_without_a_failed_request(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    await create_ready_cluster(kube, namespace, NAME, {"replicas": 3})
    plain, https = (
        member_urls(namespace, NAME, range(3)),
        member_urls(namespace, NAME, range(3), tls=True),
    )
    uids = {
        p.metadata.name: p.metadata.uid
        for p in await member_pods(kube, namespace, NAME)
        if p.metadata
    }
    async with etcd_client(plain) as etcd:
        ids = {m.name: m.id for m in (await etcd.member_list()).members}

    # Pass one: TLS on, plaintext clients still served; the writer never notices.
    tls_on = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto", "allowPlaintext": True}}
    async with writing(plain, None, "plain") as writer:
        await patch_spec(kube, namespace, NAME, {"tls": tls_on})
        await eventually(
            lambda: _settled(kube, namespace, plaintext=True), 480, "every member on TLS", 2.0
        )
        await asyncio.sleep(2)
    print(f"switch: {len(writer.acknowledged)} writes, {len(writer.failures)} failed")
    assert not writer.failures, writer.failures[:5]
    assert len(writer.acknowledged) > 100

    tls = await client_tls(kube, namespace, NAME)
    async with etcd_client(https, tls) as etcd:
        members = (await etcd.member_list()).members
        assert {m.name: m.id for m in members} == ids  # the same members, none replaced
        assert all(u.startswith("https://") for m in members for u in m.peer_urls)
        for key, value in writer.acknowledged.items():
            got = await etcd.get(key)
            assert got is not None and got.value == value.encode(), f"acknowledged {key} lost"
    restarted = {p.metadata.name for p in await member_pods(kube, namespace, NAME) if p.metadata}
    assert restarted == set(uids)  # same names, new pods
    assert all(
        p.metadata.uid != uids[p.metadata.name]
        for p in await member_pods(kube, namespace, NAME)
        if p.metadata
    )

    # Pass two: plaintext off, with a TLS client writing; each member restarts once more.
    async with writing(https, tls, "tls") as writer:
        await patch_spec(kube, namespace, NAME, {"tls": {"client": {"allowPlaintext": False}}})
        await eventually(
            lambda: _settled(kube, namespace, plaintext=False), 300, "plaintext dropped", 2.0
        )
        await asyncio.sleep(2)
    print(f"plaintext off: {len(writer.acknowledged)} writes, {len(writer.failures)} failed")
    assert not writer.failures, writer.failures[:5]
    async with etcd_client(plain) as etcd:
        with pytest.raises(EtcdError):
            await etcd.put("plaintext", "refused")
    # No private key or password material in the operator's log.
    log = operator.log_path.read_text(errors="replace")
    assert "PRIVATE KEY" not in log
