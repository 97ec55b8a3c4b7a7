"""Rolling version upgrades: one member at a time, followers first, the leader last, no lost
write and no lost quorum; refused when etcd does not support the change; stopped (and
recoverable) when a member cannot run the new version."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from etcd_operator.etcd import EtcdClient, EtcdConfig, EtcdError
from etcd_operator.resources.labels import ETCD_VERSION_ANNOTATION
from harness.clusters import (
    condition,
    create_cluster,
    create_ready_cluster,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
)
from harness.operator_process import OperatorProcess
from harness.waits import wait_events

pytestmark = pytest.mark.e2e

OLD_MINOR, NEW_MINOR = "3.5.35", "3.6.16"
OLD_PATCH = "3.6.15"
MISSING = "3.6.99"  # no image: localcluster reports ErrImagePull / ImagePullBackOff


def _client(endpoints: tuple[str, ...], request_timeout: float = 3.0) -> EtcdClient:
    return EtcdClient(
        EtcdConfig(endpoints=endpoints, dial_timeout=1.0, request_timeout=request_timeout)
    )


@dataclass
class Load:
    """A client writing sequential keys and a probe reading linearizably, both concurrent
    with the rollout."""

    acked: list[str] = field(default_factory=list)
    failed_puts: int = 0
    max_put_wait: float = 0.0
    probe_ok: list[float] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, endpoints: tuple[str, ...]) -> None:
        async with _client(endpoints) as etcd:
            i = 0
            while not self.stop.is_set():
                key = f"load/{i:06d}"
                i += 1
                started = time.monotonic()
                try:
                    await etcd.put(key, key)
                except EtcdError:
                    self.failed_puts += 1  # not acknowledged: may or may not exist
                    await asyncio.sleep(0.05)
                    continue
                finally:
                    self.max_put_wait = max(self.max_put_wait, time.monotonic() - started)
                self.acked.append(key)
                await asyncio.sleep(0.01)

    async def probe(self, endpoints: tuple[str, ...]) -> None:
        async with _client(endpoints, request_timeout=2.0) as etcd:
            while not self.stop.is_set():
                with contextlib.suppress(EtcdError):
                    await etcd.get("probe")  # linearizable: needs a quorum and a leader
                    self.probe_ok.append(time.monotonic())
                await asyncio.sleep(0.25)

    def longest_probe_gap(self, started: float, ended: float) -> float:
        marks = [started, *self.probe_ok, ended]
        return max(b - a for a, b in itertools.pairwise(marks))


async def _pod_versions(kube: AsyncClient, ns: str, name: str) -> dict[str, str]:
    return {
        p.metadata.name: (p.metadata.annotations or {}).get(ETCD_VERSION_ANNOTATION, "")
        for p in await member_pods(kube, ns, name)
        if p.metadata and p.metadata.name
    }


async def _wait_upgraded(
    kube: AsyncClient, ns: str, name: str, replicas: int, version: str, timeout: float = 240
) -> dict[str, object]:
    async def done() -> dict[str, object] | None:
        body = await get_cluster(kube, ns, name)
        status = body.get("status") or {}
        members = status.get("members") or []
        versions = await _pod_versions(kube, ns, name)
        if (
            status.get("currentVersion") == version
            and status.get("phase") == "Running"
            and len(members) == replicas
            and all(m.get("version") == version and m.get("healthy") for m in members)
            and len(versions) == replicas
            and set(versions.values()) == {version}
        ):
            return body
        return None

    return await eventually(done, timeout, f"{ns}/{name} to run {version} everywhere")


async def _posted(kube: AsyncClient, ns: str, reason: str) -> None:
    """Until an Event with `reason` is there (kopf posts it from its own queue, later than the
    status a test waited for)."""
    await wait_events(kube, ns, lambda e: e.reason == reason, f"a {reason} Event")


async def _degraded_with(
    kube: AsyncClient, ns: str, name: str, reason: str, saying: str
) -> dict[str, object]:
    async def probe() -> dict[str, object] | None:
        body = await get_cluster(kube, ns, name)
        degraded = condition(body, "Degraded")
        if (
            degraded
            and degraded.get("status") == "True"
            and degraded.get("reason") == reason
            and saying in str(degraded.get("message"))
        ):
            return dict(degraded)
        return None

    return await eventually(probe, 120, f"{ns}/{name} Degraded with {reason}: {saying}")


async def test_minor_upgrade_under_write_load_loses_no_write_and_never_quorum(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "minor"
    body = await create_ready_cluster(kube, ns, name, {"replicas": 3, "version": OLD_MINOR})
    leader = body["status"]["leader"]
    before = {
        p.metadata.name: p.metadata.creationTimestamp
        for p in await member_pods(kube, ns, name)
        if p.metadata and p.metadata.name
    }
    endpoints = member_urls(ns, name, range(3))
    load = Load()
    tasks = [asyncio.create_task(load.write(endpoints)), asyncio.create_task(load.probe(endpoints))]
    await asyncio.sleep(2)
    started = time.monotonic()
    try:
        await patch_spec(kube, ns, name, {"version": NEW_MINOR})
        await _wait_upgraded(kube, ns, name, 3, NEW_MINOR)
        ended = time.monotonic()
        await asyncio.sleep(1)
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)

    assert len(load.acked) > 100, f"the writer made too little progress: {len(load.acked)}"
    gap = load.longest_probe_gap(started, ended)
    assert gap < 8, f"no linearizable read succeeded for {gap:.1f}s: quorum was lost"
    async with _client(endpoints, request_timeout=10) as etcd:
        missing = [k for k in load.acked if await etcd.get(k) is None]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    # Every pod was replaced once, the old leader last.
    after = {
        p.metadata.name: p.metadata.creationTimestamp
        for p in await member_pods(kube, ns, name)
        if p.metadata and p.metadata.name
    }
    assert all(after[n] != before[n] for n in before)
    assert max(after, key=lambda n: after[n]) == leader
    await _posted(kube, ns, "TransferLeadership")


async def test_patch_upgrade_resumes_after_the_operator_is_killed_mid_rollout(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    ns, name = namespace, "patch"
    await create_ready_cluster(kube, ns, name, {"replicas": 3, "version": OLD_PATCH})
    endpoints = member_urls(ns, name, range(3))
    async with _client(endpoints) as etcd:
        ids = {m.name: m.id for m in (await etcd.member_list()).members}
        await etcd.put("survivor", "yes")
    await patch_spec(kube, ns, name, {"version": NEW_MINOR})

    async def one_replaced() -> bool:
        return NEW_MINOR in (await _pod_versions(kube, ns, name)).values()

    await eventually(one_replaced, 120, "the first member to be replaced", 0.1)
    operator.kill()
    await asyncio.sleep(3)
    operator.start()
    await _wait_upgraded(kube, ns, name, 3, NEW_MINOR)
    async with _client(endpoints) as etcd:
        assert {m.name: m.id for m in (await etcd.member_list()).members} == ids
        got = await etcd.get("survivor")
        assert got is not None and got.value == b"yes"


async def test_single_member_cluster_is_upgraded(kube: AsyncClient, namespace: str) -> None:
    ns, name = namespace, "single"
    await create_ready_cluster(kube, ns, name, {"replicas": 1, "version": OLD_PATCH})
    async with _client(member_urls(ns, name, [0])) as etcd:
        await etcd.put("kept", "yes")
    await patch_spec(kube, ns, name, {"version": NEW_MINOR})
    await _wait_upgraded(kube, ns, name, 1, NEW_MINOR)
    async with _client(member_urls(ns, name, [0])) as etcd:
        got = await etcd.get("kept")
        assert got is not None and got.value == b"yes"


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (OLD_MINOR, "3.7.0", "one minor version at a time"),
        ("3.7.0", OLD_MINOR, "more than one minor version"),
    ],
    ids=["skip-minor", "two-minors-down"],
)
async def test_unsupported_version_changes_are_refused_at_admission(
    kube: AsyncClient, namespace: str, before: str, after: str, message: str
) -> None:
    spec = {"replicas": 1, "paused": True, "version": before}
    await create_cluster(kube, namespace, "jump", spec)
    with pytest.raises(ApiError) as err:
        await patch_spec(kube, namespace, "jump", {"version": after})
    assert err.value.status.code == 422
    assert message in (err.value.status.message or "")


async def test_minor_downgrade_of_an_upgraded_single_member_uses_etcds_downgrade_api(
    kube: AsyncClient, namespace: str
) -> None:
    # Refused before etcd's downgrade API was used; the 3-member story is test_downgrade.py.
    ns, name = namespace, "down"
    await create_ready_cluster(kube, ns, name, {"replicas": 1, "version": NEW_MINOR})
    async with _client(member_urls(ns, name, [0])) as etcd:
        await etcd.put("kept", "yes")
    await patch_spec(kube, ns, name, {"version": OLD_MINOR})
    await _wait_upgraded(kube, ns, name, 1, OLD_MINOR)
    await _posted(kube, ns, "EnableDowngrade")
    async with _client(member_urls(ns, name, [0])) as etcd:
        got = await etcd.get("kept")
        assert got is not None and got.value == b"yes"


async def test_upgrade_to_an_image_that_cannot_start_stops_and_can_be_rolled_back(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "broken"
    await create_ready_cluster(kube, ns, name, {"replicas": 3, "version": NEW_MINOR})
    await patch_spec(kube, ns, name, {"version": MISSING})
    degraded = await _degraded_with(kube, ns, name, "UpgradeStalled", MISSING)
    assert f"spec.version back to {NEW_MINOR}" in str(degraded["message"])
    await _posted(kube, ns, "UpgradeStalled")
    await asyncio.sleep(10)  # the rollout must not move on to the next member
    versions = await _pod_versions(kube, ns, name)
    assert sorted(versions.values()) == [NEW_MINOR, NEW_MINOR, MISSING], versions
    body = await get_cluster(kube, ns, name)
    assert body["status"]["currentVersion"] == NEW_MINOR
    available = condition(body, "Available")
    assert available is not None and available["status"] == "True"

    await patch_spec(kube, ns, name, {"version": NEW_MINOR})  # the user rolls it back
    await _wait_upgraded(kube, ns, name, 3, NEW_MINOR)
