"""Replacing a member by a fresh one: on request, and to move members onto larger volumes.

A member's name is its pod's and its peer URL's, so a fresh member can only take the name once
the old one has left: the old member is removed (quorum permitting), and the rules for a missing
member then do the rest exactly as for a member whose data was lost: its pod goes, its claim is
retired or deleted by the retention policy (never reused), and a new learner of that name joins
on a fresh claim of `spec.storage.size`, copies the data from the others and is promoted.

Only the removal is decided here, and only in a calm cluster (these rules run after those that
require every member healthy, no learner in flight and no alarm), one member at a time.

What survives every step:
- on request: the `etcd.operator.io/replace-member` annotation on the EtcdCluster (the user's)
  and `status.replacement` (written before the removal) naming the request and the member ID it
  replaces. The removal is taken while that ID is in the member list, and never again for the
  same request: the fresh member has another ID.
- storage growth: the undersized claim itself; the fresh claim is not undersized.
"""

from __future__ import annotations

from etcd_operator.planner.model import EtcdMember
from etcd_operator.planner.rollout import transfer_target
from etcd_operator.planner.steps import (
    Decision,
    MoveLeader,
    Reason,
    RecordReplacement,
    RemoveMember,
    degraded,
    wait,
)
from etcd_operator.planner.view import View


def remove_for_replacement(v: View, target: EtcdMember, reason: Reason, what: str) -> Decision:
    """The next step towards removing voter `target` so that a fresh member takes its name.

    Every voter caught up with a leader first (the remaining ones must hold all the data);
    leadership moves away before the leader goes; the removal must keep quorum now and in the
    smaller membership. Two voters: the other goes on alone until the new learner is promoted
    (as available as before: two voters tolerate no failure either)."""
    name = v.label(target)
    if v.leader_id is None:
        return wait(Reason.NO_LEADER, f"no leader to commit the removal of {name}")
    lagging = next((m for m in v.voters if not v.caught_up(m)), None)
    if lagging is not None:
        return wait(
            Reason.MEMBER_CATCHING_UP,
            f"{v.label(lagging)} is catching up with the leader before {name} is replaced",
        )
    if target.id == v.leader_id:
        to = transfer_target(v, target, v.voters)
        if to is None:
            return wait(Reason.NO_TRANSFER_TARGET, f"no caught-up voter to lead after {name}")
        return Decision(
            MoveLeader(target.id, to.id, v.label(to)),
            Reason.TRANSFER_LEADERSHIP,
            f"moving leadership from {name} to {v.label(to)} before replacing it",
        )
    if not v.can_remove(target):
        return wait(Reason.MEMBER_UNHEALTHY, f"removing {name} would lose quorum")
    return Decision(RemoveMember(target.id, name), reason, what)


def _only_copy(name: str, why: str) -> Decision:
    return degraded(
        Reason.REPLACE_REFUSED,
        f"{why} is refused: {name} is the only voting member and holds the only copy of the"
        " data, so a fresh member would have nobody to copy it from. Scale to 3 members first"
        " (spec.replicas: 3)",
    )


def replace_requested(v: View) -> Decision | None:
    """`etcd.operator.io/replace-member: <name>` on the EtcdCluster: replace that member by a
    fresh one. A request names a voter of a cluster of two or more voters; anything else is
    reported (at the end of the chain, see `replacement_refused`) and blocks nothing."""
    o = v.observed
    request = o.replace_request
    if request is None:
        return None
    record = o.replacement
    if record is not None and record.request == request:
        target = next((m for m in v.voters if m.id == record.member_id), None)
        if target is None:
            return None  # removed (or never a voter again): the rules for a missing member
        return remove_for_replacement(
            v,
            target,
            Reason.REPLACE_CHOSEN_MEMBER,
            f"replacing {record.member} on request: removing member {target.id:x}; a fresh"
            f" member of that name joins as a learner on a new volume",
        )
    target = _requested_voter(v, request)
    if target is None or len(v.voters) == 1:
        return None  # reported at the end (`replacement_refused`): scaling out goes on
    return Decision(
        RecordReplacement(request, request, target.id),
        Reason.REPLACE_REQUESTED,
        f"replacement of {request} (member {target.id:x}) requested",
    )


def _requested_voter(v: View, request: str) -> EtcdMember | None:
    same = v.members_named(request)
    return same[0] if len(same) == 1 and not same[0].is_learner else None


def replacement_refused(v: View) -> Decision | None:
    """A request naming no voter, or the only one: said once everything else is in sync."""
    o = v.observed
    request = o.replace_request
    if request is None or (o.replacement is not None and o.replacement.request == request):
        return None
    if _requested_voter(v, request) is not None:
        if len(v.voters) == 1:
            return _only_copy(request, f"replacing {request} on request")
        return None
    voters = ", ".join(v.label(m) for m in v.voters)
    return degraded(
        Reason.REPLACE_REFUSED,
        f"etcd.operator.io/replace-member names {request!r}, which is not a voting member of"
        f" this cluster (voters: {voters}); nothing is replaced",
    )


def grow_by_replacement(v: View) -> Decision | None:
    """Claims smaller than `spec.storage.size` whose StorageClass cannot expand: their members
    are replaced one at a time, each onto a fresh claim of the new size. A single voter keeps
    its volume (`rollout.expansion_refused` says why)."""
    o = v.observed
    if o.volume_expansion is not False or len(v.voters) < 2:
        return None
    small = [
        m
        for m in v.voters
        if (name := v.name_of(m)) is not None
        and len(v.members_named(name)) == 1
        and (pvc := o.pvcs.get(name)) is not None
        and pvc.undersized
        and pvc.bound
        and not pvc.deleting
    ]
    if not small:
        return None
    # Followers first: the leader goes last, so leadership moves at most once.
    target = next((m for m in small if m.id != v.leader_id), small[0])
    name = v.label(target)
    return remove_for_replacement(
        v,
        target,
        Reason.GROW_BY_REPLACEMENT,
        f"the StorageClass of {name}'s claim cannot expand volumes: replacing {name} by a"
        " fresh member on a new claim of spec.storage.size (removed now, added back as a"
        " learner that copies the data from the others)",
    )
