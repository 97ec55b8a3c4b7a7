"""Derived facts about a running cluster: which member is which name, who is healthy, quorum."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from etcd_operator.naming import ordinal_of, url_address
from etcd_operator.planner.model import EtcdMember, Observed, PodState
from etcd_operator.versions import (
    Version,
    VersionChange,
    change_allowed,
    parse_version,
    same_minor,
    version_change,
)

CATCH_UP_MAX_LAG = 1000
"""A learner is caught up when its raft index is within this many entries of the leader's."""


def quorum(voters: int) -> int:
    """How many voters must be healthy for the cluster to commit anything."""
    if voters < 0:
        raise ValueError(f"voters must be >= 0, got {voters}")
    return voters // 2 + 1


@dataclass(frozen=True, slots=True)
class View:
    """An `Observed` with a known member list, plus the facts every rule needs."""

    observed: Observed
    members: tuple[EtcdMember, ...]
    owner: dict[int, str | None]  # member id -> our member name (None: not one of ours)
    leader_id: int | None

    @staticmethod
    def of(observed: Observed, members: tuple[EtcdMember, ...]) -> View:
        by_address = {url_address(u): name for name, u in observed.expected_peer_urls.items()}
        owner: dict[int, str | None] = {}
        for member in members:
            addresses = (url_address(u) for u in member.peer_urls)
            name = next((by_address[a] for a in addresses if a in by_address), None)
            if name is None and member.name in observed.expected_peer_urls:
                name = member.name
            owner[member.id] = name
        leader_id = observed.leader_id
        if leader_id is None:
            leader_id = next(
                (mid for mid, h in sorted(observed.member_health.items()) if h.is_leader), None
            )
        return View(observed, members, owner, leader_id)

    # --- membership -------------------------------------------------------------------

    def name_of(self, member: EtcdMember) -> str | None:
        return self.owner[member.id]

    def label(self, member: EtcdMember) -> str:
        """A name for messages and steps, also for members that are not ours."""
        return self.owner[member.id] or member.name or f"{member.id:x}"

    def sorted_members(self) -> list[EtcdMember]:
        """Ours by ordinal, then the others by id: the order in which rules visit members."""

        def key(m: EtcdMember) -> tuple[int, int]:
            name = self.owner[m.id]
            ordinal = ordinal_of(name) if name is not None else None
            return (ordinal if ordinal is not None else 1 << 30, m.id)

        return sorted(self.members, key=key)

    def members_named(self, name: str) -> list[EtcdMember]:
        return [m for m in self.sorted_members() if self.owner[m.id] == name]

    @property
    def voters(self) -> list[EtcdMember]:
        return [m for m in self.sorted_members() if not m.is_learner]

    @property
    def learners(self) -> list[EtcdMember]:
        return [m for m in self.sorted_members() if m.is_learner]

    @property
    def member_names(self) -> set[str]:
        return {name for name in self.owner.values() if name is not None}

    # --- health -------------------------------------------------------------------------

    def healthy(self, member: EtcdMember) -> bool:
        """Answers health checks and, when one of ours, runs in a pod that stays.

        A voter's pod must also be ready (its own /readyz agrees with our check); a
        learner's never is, since /readyz fails for learners by design to keep them out
        of the client Service, so for learners our check alone decides. Nor is any pod
        while etcd's alarm list holds CORRUPT: /readyz (and /health) then fail on every
        member, whatever its own state, so our check alone decides then too.
        """
        health = self.observed.member_health.get(member.id)
        if health is None or not (health.reachable and health.healthy):
            return False
        name = self.owner[member.id]
        if name is None:
            return True
        pod = self.observed.pods.get(name)
        return (
            pod is not None
            and (pod.ready or member.is_learner or self.corrupt_alarm)
            and not pod.deleting
            and not pod.crash_looping
        )

    @property
    def corrupt_alarm(self) -> bool:
        """etcd's alarm list holds CORRUPT (for any member)."""
        return any(kind == "CORRUPT" for _, kind in self.observed.space.alarms)

    def answers(self, member: EtcdMember) -> bool:
        """The member itself answered our health check (it runs, on some data)."""
        health = self.observed.member_health.get(member.id)
        return health is not None and health.reachable and health.healthy

    def healthy_voters(self, excluding: frozenset[int] = frozenset()) -> int:
        return sum(1 for m in self.voters if m.id not in excluding and self.healthy(m))

    def has_quorum(self) -> bool:
        return self.healthy_voters() >= quorum(len(self.voters))

    def etcd_has_quorum(self) -> bool:
        """A quorum of voters answered our quorum read, whatever their pods' readiness says
        (a probe lags by its period): the cluster serves, though it is not safe to disrupt."""
        answering = sum(1 for m in self.voters if self.answers(m))
        return answering >= quorum(len(self.voters))

    def can_remove(self, member: EtcdMember) -> bool:
        """Removing `member` keeps quorum now and in the resulting membership."""
        if member.is_learner:
            return self.has_quorum()
        remaining = len(self.voters) - 1
        return (
            remaining >= 1
            and self.has_quorum()
            and self.healthy_voters(frozenset({member.id})) >= quorum(remaining)
        )

    def can_restart(self, member: EtcdMember) -> bool:
        """Taking `member` down for a while keeps quorum of the unchanged membership."""
        return self.has_quorum() and self.healthy_voters(frozenset({member.id})) >= quorum(
            len(self.voters)
        )

    def can_promote(self, learner: EtcdMember) -> bool:
        return (
            self.healthy(learner)
            and self.caught_up(learner)
            and self.healthy_voters() + 1 >= quorum(len(self.voters) + 1)
        )

    def caught_up(self, member: EtcdMember) -> bool:
        if self.leader_id is None:
            return False
        leader = self.observed.member_health.get(self.leader_id)
        mine = self.observed.member_health.get(member.id)
        if leader is None or mine is None:
            return False
        return leader.raft_index - mine.raft_index <= CATCH_UP_MAX_LAG

    # --- versions -----------------------------------------------------------------------

    def running_version(self, member: EtcdMember) -> str | None:
        name = self.owner[member.id]
        pod = self.observed.pods.get(name) if name is not None else None
        if pod is not None and pod.version is not None:
            return pod.version
        health = self.observed.member_health.get(member.id)
        return health.version if health is not None else None

    def version_for_new_pod(self) -> str:
        return version_for_new_pod(self.observed, (self.running_version(m) for m in self.members))

    def reported_versions(self) -> list[str]:
        """The versions voters' etcd processes report about themselves right now."""
        out = []
        for m in self.voters:
            h = self.observed.member_health.get(m.id)
            if h is not None and h.reachable and h.version:
                out.append(h.version)
        return out

    def rollout_allowed(self, current: str, desired: str) -> bool:
        return rollout_allowed(self.observed, current, desired, self.reported_versions())

    def settled_versions(self) -> set[str]:
        """Versions the cluster is known to run well: those of healthy voters' pods, and the
        version status last recorded. A broken pod at any other version was put there by a
        rollout (or a human) and may be moved to `spec.version` without waiting for it."""
        known = {
            ver
            for m in self.voters
            if self.healthy(m) and (ver := self.running_version(m)) is not None
        }
        if self.observed.status_version is not None:
            known.add(self.observed.status_version)
        return known


def rollout_allowed(
    observed: Observed, current: str, desired: str, reported: Iterable[str]
) -> bool:
    """Whether one member may move from `current` to `desired`.

    Patch changes (both ways) and one minor up always; one minor down only as the rollback of
    an unfinished upgrade: some voter still reports the lower minor (or, when none answers,
    status last recorded it), so etcd's cluster version never moved to the higher minor and
    the data is still readable by the lower one.
    """
    change = version_change(current, desired)
    if change is not VersionChange.MINOR_ROLLBACK:
        return change_allowed(current, desired)
    versions = list(reported)
    if not versions and observed.status_version is not None:
        versions = [observed.status_version]
    return any(same_minor(v, desired) for v in versions)


def start_failure(pod: PodState) -> str | None:
    """Why a pod cannot run etcd at all (image missing, crash loop), or None."""
    if pod.deleting or pod.ready:
        return None
    if pod.start_error is not None:
        return pod.start_error
    if pod.crash_looping:
        return "CrashLoopBackOff"
    return None


def version_for_new_pod(observed: Observed, running: Iterable[str | None]) -> str:
    """The desired version when the cluster may move to it, else the oldest running one.

    A member started while an upgrade is refused (e.g. a skipped minor) must not jump ahead.
    """
    desired = observed.spec.version
    known = [v for v in running if v is not None and parse_version(v) is not None]
    target = downgrade_target(observed)
    if target is not None and same_minor(target, desired):
        # A downgrade is enabled: a member made now (e.g. after its eviction for the restart)
        # runs the target, or it would only be restarted again.
        return desired
    if not known and observed.status_version is not None:
        known = [observed.status_version]
    if not known:
        return desired
    oldest = min(known, key=lambda v: parse_version(v) or Version(0, 0, 0))
    return desired if change_allowed(oldest, desired) else oldest


def downgrade_target(observed: Observed) -> str | None:
    """The target of the downgrade etcd has enabled: as a member reports it (etcd 3.6), else as
    status recorded it (when no member answers)."""
    reports = [h for h in observed.member_health.values() if h.reachable and h.storage_version]
    if reports:  # etcd's own record wins
        return next((h.downgrade_target for h in reports if h.downgrade_target), None)
    return observed.status_downgrade
