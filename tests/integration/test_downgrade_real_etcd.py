"""etcd's downgrade API against real etcd 3.6 -> 3.5 processes: the exact sequence the operator
uses (validate, enable, wait for the storage versions, members restarted one at a time with the
3.5 binary, followers first and the leader last), data kept, cancel, and etcd's refusals."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from etcd_procs import EtcdBinarySet, LocalEtcdCluster, binary_sets

from etcd_operator.etcd import (
    DowngradeInProgress,
    DowngradeRefused,
    EtcdClient,
    EtcdError,
    MemberStatus,
)

NEW, OLD = "3.6", "3.5"


def _bins(minor: str) -> EtcdBinarySet:
    sets = binary_sets()
    if isinstance(sets, str):
        pytest.skip(sets)
    found = [b for b in sets if b.version.startswith(minor + ".")]
    if not found:
        pytest.skip(f"no etcd {minor}.x binary")
    return max(found, key=lambda b: tuple(int(p) for p in b.version.split(".")))


@pytest.fixture
def root() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="etcd-dg-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


async def _until(
    probe: Callable[[], Awaitable[bool | None]], what: str, within: float = 30
) -> None:
    deadline = time.monotonic() + within
    while True:
        ok = None
        with contextlib.suppress(EtcdError):
            ok = await probe()
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _statuses(etcd: EtcdClient, cluster: LocalEtcdCluster) -> list[MemberStatus]:
    return [await etcd.status(e) for e in cluster.endpoints_running()]


async def _restart(
    cluster: LocalEtcdCluster, etcd: EtcdClient, name: str, bins: EtcdBinarySet
) -> None:
    """Stop one member and start it on its data with another binary (flags as before)."""
    cluster.stop(name)
    member = cluster.members[name]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in cluster.members.values())
    old, cluster.bins = cluster.bins, bins
    try:
        cluster.start(member, initial, "existing")
    finally:
        cluster.bins = old
    await cluster.wait_healthy(etcd)


async def _write(etcd: EtcdClient, prefix: str, n: int) -> dict[str, str]:
    keys = {f"{prefix}/{i:03d}": f"v{i}" for i in range(n)}
    for k, v in keys.items():
        await etcd.put(k, v)
    return keys


async def _read_back(etcd: EtcdClient, keys: dict[str, str]) -> None:
    for k, v in keys.items():
        got = await etcd.get(k)
        assert got is not None and got.value == v.encode(), k


async def _storage_at(etcd: EtcdClient, cluster: LocalEtcdCluster, minor: str) -> bool | None:
    statuses = await _statuses(etcd, cluster)
    return all(s.storage_version.startswith(minor + ".") for s in statuses) or None


async def test_downgrade_3_6_to_3_5_member_by_member_keeps_every_key(root: Path) -> None:
    new, old = _bins(NEW), _bins(OLD)
    cluster = LocalEtcdCluster(new, root)
    cluster.start_initial(3)
    try:
        async with EtcdClient(cluster.config()) as etcd:
            await cluster.wait_healthy(etcd)
            keys = await _write(etcd, "before", 50)
            # A new cluster starts at storage version 3.5 and moves up once the cluster
            # version is decided (seen with real etcd): until then a downgrade is refused.
            await _until(lambda: _storage_at(etcd, cluster, NEW), "storage versions at 3.6")
            for s in await _statuses(etcd, cluster):
                assert (s.storage_version, s.downgrade_enabled, s.downgrade_target) == (
                    "3.6.0",
                    False,
                    "",
                )

            # etcd's own refusals, with its reason; nothing is enabled by them.
            for bad in ("3.4.0", "3.6.0", "3.7.0"):
                with pytest.raises(DowngradeRefused, match="invalid downgrade target version"):
                    await etcd.downgrade_validate(bad)
            await etcd.downgrade_cancel()  # etcd 3.6: cancelling nothing is no error
            assert not any(s.downgrade_enabled for s in await _statuses(etcd, cluster))

            assert await etcd.downgrade_validate(old.version) == "3.6"
            assert await etcd.downgrade_enable(old.version) == "3.6"
            with pytest.raises(DowngradeInProgress):
                await etcd.downgrade_enable(old.version)  # not idempotent: observe first
            for s in await _statuses(etcd, cluster):
                assert s.downgrade_enabled and s.downgrade_target == "3.5.0"
            # The cluster version, then every member's storage version, goes down to 3.5:
            # only then may a member run the 3.5 binary.
            await _until(lambda: _storage_at(etcd, cluster, OLD), "storage versions at 3.5")
            keys |= await _write(etcd, "enabled", 20)

            # Followers first, the leader last after moving leadership to a 3.5 member.
            statuses = await _statuses(etcd, cluster)
            leader_id = statuses[0].leader
            by_id = {s.member_id: n for s, n in zip(statuses, cluster.members, strict=True)}
            leader = by_id[leader_id]
            order = [n for n in cluster.members if n != leader] + [leader]
            done: list[str] = []
            for name in order:
                if name == leader:
                    to = next(i for i, n in by_id.items() if n == done[0])
                    await etcd.move_leader(to)
                await _restart(cluster, etcd, name, old)
                done.append(name)
                keys |= await _write(etcd, f"after-{name}", 10)

            for s in await _statuses(etcd, cluster):
                assert s.version == old.version
            await _read_back(etcd, keys)

            # etcd finishes the downgrade itself once every member runs the target (the 3.5
            # leader cancels it): a member started with 3.6 again finds none enabled.
            await _restart(cluster, etcd, order[0], new)

            async def finished() -> bool | None:
                s = await etcd.status(cluster.members[order[0]].client_url)
                return s.version == new.version and not s.downgrade_enabled

            await _until(finished, "etcd to finish the downgrade")
            await _read_back(etcd, keys)
    finally:
        cluster.stop_all()


async def test_cancel_after_one_member_went_down_rolls_forward(root: Path) -> None:
    new, old = _bins(NEW), _bins(OLD)
    cluster = LocalEtcdCluster(new, root)
    cluster.start_initial(3)
    try:
        async with EtcdClient(cluster.config()) as etcd:
            await cluster.wait_healthy(etcd)
            keys = await _write(etcd, "before", 20)
            await _until(lambda: _storage_at(etcd, cluster, NEW), "storage versions at 3.6")
            await etcd.downgrade_enable(old.version)
            await _until(lambda: _storage_at(etcd, cluster, OLD), "storage versions at 3.5")
            statuses = await _statuses(etcd, cluster)
            by_id = {s.member_id: n for s, n in zip(statuses, cluster.members, strict=True)}
            follower = next(n for i, n in by_id.items() if i != statuses[0].leader)
            await _restart(cluster, etcd, follower, old)

            # The spec went back up: cancel (through a 3.6 member, which knows the downgrade),
            # then the 3.5 member runs 3.6 again, and the cluster and storage versions return.
            still_new = next(n for n in cluster.members if n != follower)
            await etcd.downgrade_cancel(cluster.members[still_new].client_url)
            assert not any(
                s.downgrade_enabled for s in await _statuses(etcd, cluster) if s.storage_version
            )
            await _restart(cluster, etcd, follower, new)
            await _until(lambda: _storage_at(etcd, cluster, NEW), "storage versions back at 3.6")
            for s in await _statuses(etcd, cluster):
                assert s.version == new.version and not s.downgrade_enabled
            keys |= await _write(etcd, "after", 10)
            await _read_back(etcd, keys)
    finally:
        cluster.stop_all()
