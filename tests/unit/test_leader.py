"""Leader election: the pure view, and two electors against a compare-and-swap Lease store
with a shared fake clock (the real API is exercised in tests/e2e/operator/test_ha.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.coordination_v1 import Lease

from etcd_operator import rbac
from etcd_operator.leader import LeaderElector, LeaseView, Record, Timing

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


def _api_error(code: int) -> ApiError:
    return ApiError(status=Status(code=code, message=str(code)))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LeaseStore:
    """One Lease with resourceVersion compare-and-swap, as the apiserver does; records the
    verbs used so they can be checked against the declared RBAC."""

    def __init__(self) -> None:
        self.lease: Lease | None = None
        self.version = 0
        self.calls: set[tuple[str, str, str]] = set()
        self.down = False

    def _call(self, verb: str) -> None:
        if self.down:
            raise _api_error(503)
        self.calls.add(("coordination.k8s.io", "leases", verb))

    async def get(self, kind: Any, name: str, **_: Any) -> Lease:
        self._call("get")
        if self.lease is None:
            raise _api_error(404)
        return copy.deepcopy(self.lease)

    async def create(self, obj: Lease, **_: Any) -> Lease:
        self._call("create")
        if self.lease is not None:
            raise _api_error(409)
        return self._store(obj)

    async def replace(self, obj: Lease, **_: Any) -> Lease:
        self._call("update")
        assert self.lease is not None and obj.metadata is not None
        if obj.metadata.resourceVersion != str(self.version):
            raise _api_error(409)
        return self._store(obj)

    def _store(self, obj: Lease) -> Lease:
        self.version += 1
        stored = copy.deepcopy(obj)
        assert stored.metadata is not None
        stored.metadata.resourceVersion = str(self.version)
        self.lease = stored
        return copy.deepcopy(stored)


def _electors(store: LeaseStore, clock: Clock) -> tuple[LeaderElector, LeaderElector]:
    def elector(identity: str) -> LeaderElector:
        return LeaderElector(
            store,  # type: ignore[arg-type]
            name="lease",
            namespace="ops",
            identity=identity,
            timing=TIMING,
            clock=clock,
        )

    return elector("a"), elector("b")


def test_timing_must_leave_a_fencing_margin() -> None:
    assert TIMING.margin == 5
    for bad in ((15, 15, 2), (15, 10, 10), (15, 20, 2), (15, 10, 0)):
        with pytest.raises(ValueError):
            Timing(*bad)


def test_a_held_lease_may_be_taken_only_after_a_whole_duration_unchanged() -> None:
    view = LeaseView(Record("a", "t1"), observed_at=100.0)
    assert view.may_take("a", 100.0, TIMING)  # its own
    assert not view.may_take("b", 114.9, TIMING)
    assert view.may_take("b", 115.0, TIMING)
    # A renewal seen restarts the clock; the same record seen again does not.
    assert view.seen(Record("a", "t1"), 110.0) is view
    renewed = view.seen(Record("a", "t2"), 110.0)
    assert not renewed.may_take("b", 115.0, TIMING)
    assert LeaseView(Record(None, "t1"), 100.0).may_take("b", 100.0, TIMING)  # released


async def test_exactly_one_of_two_electors_leads_and_the_other_takes_over_after_a_kill() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _electors(store, clock)
    assert await a.try_once() is True
    assert await b.try_once() is False
    assert a.is_leader() and not b.is_leader()
    # a renews every retry period: b never gets it.
    for _ in range(20):
        clock.now += TIMING.retry_period
        assert await a.try_once() is True
        assert await b.try_once() is False
        assert a.is_leader() and not b.is_leader()
    # a dies (stops renewing). Its fence closes renew_deadline after its last renewal was
    # sent; b may take over only lease_duration after it saw that renewal.
    last_renewal = clock.now
    took_over = None
    while took_over is None:
        clock.now += 0.5
        if await b.try_once():
            took_over = clock.now
        # Never two leaders at any instant.
        assert not (a.is_leader() and b.is_leader())
    assert not a.is_leader()
    assert took_over - last_renewal >= TIMING.lease_duration
    assert store.lease is not None and store.lease.spec is not None
    assert store.lease.spec.holderIdentity == "b"
    assert store.lease.spec.leaseTransitions == 1
    # a comes back: it is a standby now.
    assert await a.try_once() is False


async def test_a_leader_cut_off_from_the_api_stops_acting_before_the_standby_starts() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _electors(store, clock)
    assert await a.try_once()
    assert not await b.try_once()  # b saw a's renewal at t=0
    store.down = True  # a partition: neither can reach the Lease
    clock.now = TIMING.renew_deadline
    assert not a.is_leader()  # fenced out, though nobody else holds it yet
    store.down = False
    clock.now = TIMING.lease_duration - 0.1
    assert not await b.try_once()
    clock.now = TIMING.lease_duration
    assert await b.try_once()


async def test_a_lost_race_for_a_free_lease_is_a_conflict_not_a_second_leader() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _electors(store, clock)
    assert await a.try_once()
    await a.release()
    assert not a.is_leader()
    assert store.lease is not None and store.lease.spec is not None
    assert store.lease.spec.holderIdentity is None
    # Both read the free Lease; only the first write wins (resourceVersion).
    stale = await store.get(Lease, "lease")
    assert await b.try_once()
    assert stale.metadata is not None and stale.spec is not None
    stale.spec.holderIdentity = "a"
    with pytest.raises(ApiError):
        await store.replace(stale)


async def test_every_lease_call_is_declared() -> None:
    store, clock = LeaseStore(), Clock()
    a, b = _electors(store, clock)
    await a.try_once()
    await b.try_once()
    await a.try_once()
    declared = {(r.group, r.resource, r.verb) for r in rbac.declared() if r.operator_namespace}
    assert store.calls == declared
