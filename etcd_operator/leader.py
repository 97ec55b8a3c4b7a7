"""Leader election through a coordination.k8s.io/v1 Lease: several replicas, one acts.

Why a Lease rather than kopf's peering: a Lease is what every Kubernetes controller uses
(kubectl shows who holds it), its writes are compare-and-swap on resourceVersion, and its
timing gives a fence: kopf's peering only pauses lower-priority peers, with no bound on
when a paused peer stops acting.

The fence: a holder counts itself leader until `renew_deadline` after it *sent* its last
successful renewal; a contender takes the Lease only after seeing it unchanged for
`lease_duration` on its own clock, and it can only have seen a renewal after it was sent.
So with renew_deadline < lease_duration a replica that lost the Lease stops acting at least
`lease_duration - renew_deadline` before another may start (clocks need only tick at the
same rate; they need not agree). The step applied last before the fence closed must finish
within that margin; the margin is a flag.

`LeaseView` is the pure part (what a replica may do given what it saw); `LeaderElector`
is the shell that reads and writes the Lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from etcd_operator import rbac

rbac.needs(
    Lease,
    "get",
    "create",
    "update",
    why="leader election: one replica acts (--leader-elect)",
    operator_namespace=True,
)

log = logging.getLogger(__name__)

LEADER_ELECT_ENV = "ETCD_OPERATOR_LEADER_ELECT"
LEASE_NAME_ENV = "ETCD_OPERATOR_LEASE_NAME"
LEASE_NAMESPACE_ENV = "ETCD_OPERATOR_LEASE_NAMESPACE"
LEASE_DURATION_ENV = "ETCD_OPERATOR_LEASE_DURATION"
RENEW_DEADLINE_ENV = "ETCD_OPERATOR_RENEW_DEADLINE"
RETRY_PERIOD_ENV = "ETCD_OPERATOR_RETRY_PERIOD"
IDENTITY_ENV = "ETCD_OPERATOR_IDENTITY"
DEFAULT_LEASE_NAME = "etcd-operator-leader"


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds. The defaults are client-go's (15/10/2)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration,"
                f" got {self.retry_period}/{self.renew_deadline}/{self.lease_duration}"
            )

    @property
    def margin(self) -> float:
        """How long before a contender may act a fenced-out holder has stopped."""
        return self.lease_duration - self.renew_deadline


@dataclass(frozen=True, slots=True)
class Record:
    """The parts of a Lease's spec that tell whether it is held (None: never held)."""

    holder: str | None
    renew_time: str | None
    transitions: int = 0


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What one replica saw of the Lease and when (its monotonic clock)."""

    record: Record
    observed_at: float

    def seen(self, record: Record, now: float) -> LeaseView:
        """A new read: the clock restarts only when the record changed."""
        return self if record == self.record else LeaseView(record, now)

    def may_take(self, me: str, now: float, timing: Timing) -> bool:
        """Whether `me` may write itself as holder: it holds it already, nobody does, or the
        holder has not renewed for a whole lease duration as this replica saw it."""
        holder = self.record.holder
        if not holder or holder == me:
            return True
        return now >= self.observed_at + timing.lease_duration


def default_identity() -> str:
    """Pod name (the hostname in a pod) plus a random suffix: a restarted container is a
    new candidate, never mistaken for the holder it replaced."""
    base = os.environ.get(IDENTITY_ENV) or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def _record_of(lease: Lease) -> Record:
    spec = lease.spec
    if spec is None:
        return Record(None, None)
    renew = spec.renewTime
    return Record(
        spec.holderIdentity or None,
        renew.isoformat() if isinstance(renew, datetime) else renew,
        spec.leaseTransitions or 0,
    )


class LeaderElector:
    """Keeps trying to hold the Lease; `is_leader()` is the fence checked before acting."""

    def __init__(
        self,
        kube: AsyncClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        timing: Timing,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing
        self._clock = clock
        self._on_change = on_change
        self._held_until = 0.0
        self._view: LeaseView | None = None
        self._was_leader = False
        # When the Lease was last read or written successfully (standby readiness).
        self.last_contact: float | None = None
        self.became_leader = asyncio.Event()

    def is_leader(self) -> bool:
        return self._clock() < self._held_until

    async def run(self) -> None:
        while True:
            try:
                await self.try_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # API down, conflicts: the fence closes by itself
                log.warning("leader election: %s", e)
            self._notice()
            await asyncio.sleep(self.timing.retry_period)

    async def try_once(self) -> bool:
        """One read and, if allowed, one write. True when this replica holds the Lease."""
        sent = self._clock()
        try:
            lease = await self.kube.get(Lease, self.name, namespace=self.namespace)
        except ApiError as e:
            if e.status.code != 404:
                raise
            return await self._create(sent)
        record = _record_of(lease)
        now = self._clock()
        self._view = LeaseView(record, now) if self._view is None else self._view.seen(record, now)
        self.last_contact = now
        if not self._view.may_take(self.identity, now, self.timing):
            return False
        sent = self._clock()
        wall = datetime.now(UTC)
        spec = lease.spec
        assert spec is not None  # read above: a Lease we can take has a spec
        if record.holder != self.identity:
            spec.acquireTime = wall
            spec.leaseTransitions = record.transitions + (1 if record.holder else 0)
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = int(self.timing.lease_duration)
        spec.renewTime = wall
        try:
            # PUT with the resourceVersion just read: a concurrent writer makes this a 409.
            written = await self.kube.replace(lease)
        except ApiError as e:
            if e.status.code == 409:
                return False
            raise
        self._renewed(sent, _record_of(written))
        return True

    async def _create(self, sent: float) -> bool:
        wall = datetime.now(UTC)
        body = Lease(
            metadata=ObjectMeta(name=self.name, namespace=self.namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(self.timing.lease_duration),
                acquireTime=wall,
                renewTime=wall,
                leaseTransitions=0,
            ),
        )
        try:
            written = await self.kube.create(body)
        except ApiError as e:
            if e.status.code == 409:  # another replica created it first
                return False
            raise
        self._renewed(sent, _record_of(written))
        return True

    def _renewed(self, sent: float, record: Record) -> None:
        self._held_until = sent + self.timing.renew_deadline
        now = self._clock()
        self._view = LeaseView(record, now)
        self.last_contact = now

    def _notice(self) -> None:
        leader = self.is_leader()
        if leader != self._was_leader:
            self._was_leader = leader
            log.info(
                "leader election: %s %s the Lease %s/%s",
                self.identity,
                "now holds" if leader else "no longer holds",
                self.namespace,
                self.name,
            )
            if leader:
                self.became_leader.set()
            else:
                self.became_leader.clear()
            if self._on_change is not None:
                self._on_change(leader)

    async def release(self) -> None:
        """On a clean shutdown: give the Lease up so a standby takes over at once."""
        if not self.is_leader():
            return
        self._held_until = 0.0
        try:
            lease = await self.kube.get(Lease, self.name, namespace=self.namespace)
            if lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec.holderIdentity = None
            await self.kube.replace(lease)
        except ApiError as e:
            log.warning("leader election: releasing the Lease: %s", e)
        self._notice()


class AlwaysLeader:
    """Leader election off (`--standalone`): the only replica always acts."""

    identity = "standalone"

    def is_leader(self) -> bool:
        return True


def timing_from_env() -> Timing:
    def seconds(env: str, default: float) -> float:
        value = os.environ.get(env)
        return float(value) if value else default

    base = Timing()
    return Timing(
        lease_duration=seconds(LEASE_DURATION_ENV, base.lease_duration),
        renew_deadline=seconds(RENEW_DEADLINE_ENV, base.renew_deadline),
        retry_period=seconds(RETRY_PERIOD_ENV, base.retry_period),
    )


def enabled() -> bool:
    return os.environ.get(LEADER_ELECT_ENV, "") in ("1", "true", "True")


def lease_location(operator_namespace: str | None) -> tuple[str, str]:
    name = os.environ.get(LEASE_NAME_ENV) or DEFAULT_LEASE_NAME
    namespace = os.environ.get(LEASE_NAMESPACE_ENV) or operator_namespace or "default"
    return name, namespace
