"""etcd's CORRUPT alarm: the member it names is replaced, then the alarm is disarmed.

etcd raises CORRUPT for a member (by ID) after its own hash check and from then on refuses
every write, on every member, until the alarm is disarmed; reads still work. The alarm list is
replicated through raft and survives restarts: a durable fact naming the member whose data
diverged, which is all these rules go by.

- One member named, the other voters a healthy majority: the named member is removed
  (planner/replace.py: leadership moves away first, quorum kept now and after); the rules for
  a missing member then add a fresh learner of its name that copies the majority's data.
- No named member left in the member list (replaced, or removed by hand), every voter healthy
  and, when their HashKV were taken, in agreement: the alarm is disarmed. Never before, while
  the member it names is a member: its data would serve reads and be written to again.
- Anything else (several members named, the only voter, two voters with nobody to tell which
  copy is right, a majority that is not healthy): Degraded, saying what a human should do.

While CORRUPT is active these rules stop every change that follows them (see running.py).
"""

from __future__ import annotations

from etcd_operator.planner.corruption import replace_corrupt
from etcd_operator.planner.model import EtcdMember
from etcd_operator.planner.replace import remove_for_replacement
from etcd_operator.planner.steps import (
    Decision,
    DisarmAlarm,
    Reason,
    RemoveMember,
    degraded,
    wait,
)
from etcd_operator.planner.view import View, quorum

CORRUPT = "CORRUPT"

_HOWTO = "see docs/troubleshooting.md, 'CorruptAlarm'"


def corrupt_ids(v: View) -> tuple[int, ...]:
    """The member IDs etcd's alarm list raises CORRUPT for (sorted)."""
    return tuple(sorted({mid for mid, kind in v.observed.space.alarms if kind == CORRUPT}))


def corrupt_alarm(v: View) -> Decision | None:
    """The next step while etcd's alarm list holds CORRUPT; None when it holds none."""
    ids = corrupt_ids(v)
    if not ids:
        return None
    named = [m for m in v.sorted_members() if m.id in ids]
    if not named:
        return _disarm(v, ids)
    if len(named) > 1:
        listed = ", ".join(v.label(m) for m in named)
        return degraded(
            Reason.CORRUPT_ALARM,
            f"etcd raised CORRUPT on {listed}: the operator replaces one alarmed member at a"
            " time, never several, and etcd refuses writes meanwhile. Find which members hold"
            " the majority's data (etcdctl endpoint hashkv --cluster), remove the others with"
            " etcdctl member remove one at a time (the operator then replaces them and disarms"
            f" the alarm); {_HOWTO}",
        )
    return _replace(v, named[0])


def _replace(v: View, target: EtcdMember) -> Decision:
    name = v.label(target)
    voters = v.voters
    what = (
        f"etcd raised CORRUPT on {name} (its data diverged from the others'; etcd refuses"
        f" writes meanwhile): replacing it by a fresh member that copies the majority's data"
    )
    if target.is_learner:
        # It votes on nothing and serves no client: taking it away costs nothing.
        if not v.has_quorum():
            return wait(Reason.MEMBER_UNHEALTHY, f"no quorum to remove learner {name}")
        return Decision(RemoveMember(target.id, name), Reason.REPLACE_ALARMED_MEMBER, what)
    if len(voters) == 1:
        return degraded(
            Reason.CORRUPT_ALARM,
            f"etcd raised CORRUPT on {name}, the only voting member: there is no other copy"
            " of the data to replace it from, and etcd refuses writes. Restore the cluster from"
            " a backup, or disarm the alarm by hand (etcdctl alarm disarm) if you know the"
            f" data is sound; {_HOWTO}",
        )
    others = [m for m in voters if m.id != target.id]
    if len(others) < quorum(len(voters)):
        return degraded(
            Reason.CORRUPT_ALARM,
            f"etcd raised CORRUPT on {name}, but the other voters are no majority of"
            f" {len(voters)}, so nothing says which copy is right; nothing is replaced and etcd"
            " refuses writes. Compare the members' data (etcdctl endpoint hashkv --cluster),"
            f" remove the wrong one with etcdctl member remove; {_HOWTO}",
        )
    sick = [v.label(m) for m in others if not v.healthy(m)]
    if sick:
        return degraded(
            Reason.CORRUPT_ALARM,
            f"etcd raised CORRUPT on {name}; it is replaced only once every other voter is"
            f" healthy, and {', '.join(sick)} is not. Bring it back (its pod, its volume);"
            f" etcd refuses writes meanwhile; {_HOWTO}",
        )
    if v.healthy(target):
        return remove_for_replacement(v, target, Reason.REPLACE_ALARMED_MEMBER, what)
    # It does not serve (e.g. it crashes on its own data): it is only taken away, once the
    # healthy others hold everything and one of them leads.
    lagging = next((m for m in others if not v.caught_up(m)), None)
    if lagging is not None:
        return wait(
            Reason.MEMBER_CATCHING_UP,
            f"{v.label(lagging)} is catching up with the leader before {name} is replaced",
        )
    if target.id == v.leader_id or not v.can_remove(target):
        return wait(Reason.MEMBER_UNHEALTHY, f"removing {name} would lose quorum")
    return Decision(RemoveMember(target.id, name), Reason.REPLACE_ALARMED_MEMBER, what)


def _disarm(v: View, ids: tuple[int, ...]) -> Decision:
    gone = ", ".join(f"{mid:x}" for mid in ids)
    sick = [v.label(m) for m in v.voters if not v.healthy(m)]
    if sick or not v.voters:
        return degraded(
            Reason.CORRUPT_ALARM,
            f"etcd's CORRUPT alarm names member {gone}, no longer a member; it is disarmed"
            f" once every voter is healthy, and {', '.join(sick) or 'no voter'} is not. etcd"
            f" refuses writes meanwhile; {_HOWTO}",
        )
    # HashKV taken this round: a diverged survivor is replaced first, disagreement without a
    # majority stops here (the same rules as without the alarm).
    verdict = replace_corrupt(v)
    if verdict is not None:
        return verdict
    return Decision(
        DisarmAlarm(ids, CORRUPT),
        Reason.CORRUPT_DISARMED,
        f"CORRUPT disarmed: member {gone}, which it named, is no longer a member and every"
        " voter is healthy; writes are accepted again",
    )
