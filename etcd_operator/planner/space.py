"""Space: etcd's alarms, NOSPACE recovery and defragmentation (pure).

NOSPACE: etcd refuses every write once a member's backend reaches the quota. The way out is
the one etcd documents: compact the key history, defragment every member (its file shrinks to
the live data), then disarm. Each fact is durable: the alarm is etcd's replicated alarm list,
the compaction is recorded in status, a member's need for defragmentation is its own status
(backend size against size in use). So a killed operator resumes where it stopped, and a step
taken twice changes nothing.

Defragmentation blocks its member, so only one member at a time, only when every member is
healthy, followers first and the leader last (defragmenting the leader makes it miss
heartbeats long enough to lose leadership and cost the cluster an election).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from croniter import croniter

from etcd_operator.planner.model import DefragPolicy, MemberHealth, Observed, SpaceState
from etcd_operator.planner.rollout import roll_outdated
from etcd_operator.planner.steps import (
    Compact,
    Decision,
    Defragment,
    DefragTrigger,
    DisarmAlarm,
    Reason,
    degraded,
    wait,
)
from etcd_operator.planner.view import View

NOSPACE = "NOSPACE"

NO_SPACE_DEFRAG_FREE = 0.1
"""During NOSPACE recovery, after every member was defragmented once, a member whose backend
is larger than the smallest by this fraction of the largest is defragmented again."""

LIVE_DATA_LIMIT = 0.9
"""Live data above this fraction of the quota after compaction and defragmentation: disarming
would let the next writes raise the alarm again at once, so the operator stops and says so."""


def mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def free_fraction(h: MemberHealth) -> float:
    """The share of a member's backend file that holds no live data."""
    if h.db_size <= 0:
        return 0.0
    return max(h.db_size - h.db_size_in_use, 0) / h.db_size


def schedule_due(schedule: str, since: datetime, now: datetime) -> bool:
    """Whether the cron `schedule` fired after `since` and by `now`."""
    fire: datetime = croniter(schedule, since).get_next(datetime)
    return fire <= now


def next_fire(schedule: str, now: datetime) -> datetime:
    """When the cron `schedule` fires next after `now` (the shell wakes the loop then)."""
    fire: datetime = croniter(schedule, now).get_next(datetime)
    return fire


def current_revision(o: Observed) -> int | None:
    """The newest revision a member serves (None when no member said)."""
    revisions = [h.revision for h in o.member_health.values() if h.reachable and h.revision]
    return max(revisions, default=None)


def compacted_at(o: Observed) -> datetime | None:
    """When the history was compacted for the current NOSPACE alarm, as status records it.

    A record is of an earlier alarm when the cluster is past its revision: etcd takes no
    writes under NOSPACE, so writes came after a disarm (e.g. the operator was killed after
    the disarm, before the status write that drops the record, and the quota filled up again).
    That alarm starts over with a compaction: the old run's facts say nothing about it."""
    space = o.space
    now = current_revision(o)
    if space.compacted_revision is not None and now is not None and now > space.compacted_revision:
        return None
    return space.compacted_at


def _calm(v: View) -> bool:
    """Every member healthy, none a learner: the one moment a member may be taken away."""
    return not v.learners and all(v.healthy(m) for m in v.members)


def _pick(
    v: View, wants: Callable[[str, MemberHealth], bool], trigger: DefragTrigger, new_run: bool
) -> Decision | None:
    """The next member to defragment: followers by ordinal, the leader last."""
    candidates = []
    for m in v.sorted_members():
        name, health = v.name_of(m), v.observed.member_health.get(m.id)
        if name is not None and health is not None and wants(name, health):
            candidates.append((m, name, health))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0].id == v.leader_id)  # stable: followers keep ordinal order
    m, name, h = candidates[0]
    role = "the leader, last" if m.id == v.leader_id else "a follower"
    return Decision(
        Defragment(m.id, name, trigger, new_run),
        Reason.DEFRAGMENT,
        f"defragmenting {name} ({role}; {trigger.value}): backend {mib(h.db_size)},"
        f" {mib(h.db_size_in_use)} in use",
    )


def alarms(v: View) -> Decision | None:
    """Any alarm stops every other change. NOSPACE is recovered from; any other alarm (CORRUPT:
    a member's data diverged) is reported and left alone."""
    space = v.observed.space
    if not space.alarms:
        for m in v.sorted_members():
            health = v.observed.member_health.get(m.id)
            if health is not None and health.alarms:
                # Members report alarms but etcd's alarm list was not read: judge nothing.
                return degraded(
                    Reason.ALARM_ACTIVE,
                    f"{v.label(m)} reports alarms: {', '.join(health.alarms)}",
                )
        return None
    by_id = {m.id: v.label(m) for m in v.members}
    other = [(mid, kind) for mid, kind in space.alarms if kind != NOSPACE]
    if other:
        raised = ", ".join(f"{kind} on {by_id.get(mid, f'{mid:x}')}" for mid, kind in other)
        return degraded(
            Reason.ALARM_ACTIVE,
            f"etcd raised {raised}; the operator does not disarm it (CORRUPT means a member's"
            " data diverged from the others'): nothing else changes until it is resolved",
        )
    if not _calm(v):
        # The rules for unhealthy members and learners run first: not reached in practice.
        return wait(Reason.MEMBER_UNHEALTHY, "NOSPACE: waiting for every member to be healthy")
    return _recover_space(v, space)


def _recover_space(v: View, space: SpaceState) -> Decision:
    health = v.observed.member_health
    sizes = [h.db_size for m in v.members if (h := health.get(m.id)) is not None]
    largest = max(sizes, default=0)
    compacted = compacted_at(v.observed)
    if compacted is None:
        return Decision(
            Compact(),
            Reason.COMPACT,
            f"NOSPACE: the largest backend holds {mib(largest)} of a {mib(space.quota)} quota;"
            " compacting the key history at the current revision",
        )
    # Every member is defragmented once since the compaction, as status records: its free
    # space cannot be told before, since a member refreshes dbSizeInUse only when it commits
    # a write, and a cluster under NOSPACE writes nothing.
    run = space.last_defrag
    in_run = run is not None and run.trigger == DefragTrigger.NO_SPACE and run.started >= compacted
    done = run.members if run is not None and in_run else ()
    pick = _pick(v, lambda n, _: n not in done, DefragTrigger.NO_SPACE, not in_run)
    if pick is not None:
        return pick
    # Members hold the same keys, so their defragmented files are about the same size; one
    # much larger had not applied the compaction yet when it was defragmented (each member
    # compacts on its own once raft hands it the request): once more.
    smallest = min(sizes, default=0)
    lagging = _pick(
        v,
        lambda _, h: h.db_size - smallest > NO_SPACE_DEFRAG_FREE * largest,
        DefragTrigger.NO_SPACE,
        False,
    )
    if lagging is not None:
        return lagging
    # Members restart with the spec's quota (e.g. raised to get out of NOSPACE) before it is
    # judged against: disarming under the old one would raise the alarm again at once. A
    # version change waits for the version rules, after the alarm (they may refuse it).
    rollout = roll_outdated(v, same_version_only=True)
    if rollout is not None:
        return rollout
    if largest >= LIVE_DATA_LIMIT * space.quota:
        return degraded(
            Reason.NO_SPACE,
            f"NOSPACE: after compaction and defragmentation the live data still takes"
            f" {mib(largest)} of the {mib(space.quota)} quota; the alarm stays"
            " (disarming would raise it again at the next writes). Raise"
            " spec.etcd.quotaBackendBytes or delete keys",
        )
    ids = tuple(sorted({mid for mid, kind in space.alarms if kind == NOSPACE}))
    return Decision(
        DisarmAlarm(ids),
        Reason.SPACE_RECOVERED,
        f"NOSPACE disarmed: the largest backend went from {mib(space.db_size_before)} to"
        f" {mib(largest)} (quota {mib(space.quota)}); writes are accepted again",
    )


def defragment(v: View) -> Decision | None:
    """`spec.maintenance.defrag`, once nothing else is to be done: a scheduled run (every
    member in turn) or members whose free fraction passed the threshold."""
    o = v.observed
    policy = o.space.defrag
    if policy is None or not _calm(v):
        return None
    return _scheduled(v, policy) or _over_threshold(v, policy)


def _scheduled(v: View, policy: DefragPolicy) -> Decision | None:
    o = v.observed
    run, now = o.space.last_defrag, o.now
    if policy.schedule is None or now is None:
        return None

    def large(h: MemberHealth) -> bool:
        return h.db_size >= policy.min_db_size

    if run is not None and run.trigger == DefragTrigger.SCHEDULE:
        pending = _pick(
            v, lambda n, h: n not in run.members and large(h), DefragTrigger.SCHEDULE, False
        )
        if pending is not None:
            return pending
    since = run.started if run is not None else o.space.created
    if since is None or not schedule_due(policy.schedule, since, now):
        return None
    return _pick(v, lambda _, h: large(h), DefragTrigger.SCHEDULE, True)


def _over_threshold(v: View, policy: DefragPolicy) -> Decision | None:
    threshold = policy.threshold
    if threshold is None:
        return None
    run = v.observed.space.last_defrag

    def wants(_: str, h: MemberHealth) -> bool:
        return h.db_size >= policy.min_db_size and free_fraction(h) >= threshold

    pick = _pick(v, wants, DefragTrigger.THRESHOLD, False)
    if pick is None or not isinstance(pick.step, Defragment):
        return pick
    step = pick.step
    # A member over the threshold again after its own defragmentation starts a new run.
    fresh = run is None or run.trigger != DefragTrigger.THRESHOLD or step.member in run.members
    return Decision(
        Defragment(step.member_id, step.member, step.trigger, fresh), pick.reason, pick.message
    )
