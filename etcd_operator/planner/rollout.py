"""Rollouts: how a member is restarted, which member goes next, spec changes reaching existing
members, and volumes growing to `spec.storage.size`.

`restart_in_turn` is the one place that picks the next member to restart and the step that
restarts it; the version rules (`running._upgrade`) and the spec rollout (`roll_outdated`) both
use it, so a spec change is rolled out with exactly the upgrade's safety rules. A member whose
data lives in an emptyDir cannot restart, since its data goes with its pod: it is replaced
(taken out of the membership and added back as a new learner that copies the data from the
others), and only when quorum allows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from etcd_operator.naming import by_ordinal
from etcd_operator.planner.model import EtcdMember
from etcd_operator.planner.steps import (
    Decision,
    ExpandVolume,
    MoveLeader,
    Reason,
    RemoveMember,
    UpgradeMember,
    degraded,
    wait,
)
from etcd_operator.planner.view import View
from etcd_operator.planner.volumes import claim_of


def transfer_target(v: View, away_from: EtcdMember, prefer: list[EtcdMember]) -> EtcdMember | None:
    """The first of `prefer` that may lead instead of `away_from`: a healthy, caught-up voter."""
    for m in prefer:
        if m.id != away_from.id and not m.is_learner and v.healthy(m) and v.caught_up(m):
            return m
    return None


def restart_in_turn(
    v: View,
    stale: list[tuple[EtcdMember, str]],
    to_version: str,
    reason: Reason,
    describe: Callable[[str, str], str],
) -> Decision:
    """Restart the next of `stale` (voters with their running versions) at `to_version`.

    The caller has checked that every member is healthy, no learner is in flight and no alarm
    is active. Here: a leader exists and every voter has caught up with it (so the member
    restarted last is back before the next goes); followers go first, from the highest ordinal;
    leadership moves to a member already done before the leader goes. `describe(name,
    from_version)` says what the restart is for, in the step's message.
    """
    if v.leader_id is None:
        return wait(
            Reason.NO_LEADER,
            "no leader; restarts wait for a stable cluster",
        )
    lagging = next((m for m in v.voters if not v.caught_up(m)), None)
    if lagging is not None:
        return wait(
            Reason.MEMBER_CATCHING_UP,
            f"{v.label(lagging)} is catching up with the leader before the next member restarts",
        )
    voters = len(v.voters)
    followers = [(m, ver) for m, ver in stale if m.id != v.leader_id]
    target, ver = followers[-1] if followers else stale[0]
    name = v.label(target)
    if target.id == v.leader_id and voters > 1:
        stale_ids = {m.id for m, _ in stale}
        done = [m for m in v.voters if m.id not in stale_ids]
        to = transfer_target(v, target, done)
        if to is None:
            return wait(
                Reason.NO_TRANSFER_TARGET,
                f"no caught-up voter to lead after {name}",
            )
        return Decision(
            MoveLeader(target.id, to.id, v.label(to)),
            Reason.TRANSFER_LEADERSHIP,
            f"moving leadership from {name} to {v.label(to)} before restarting it",
        )
    what = describe(name, ver)
    restart = UpgradeMember(name, target.id, ver, to_version)
    if v.observed.spec.empty_dir:
        return _replace(v, target, restart, reason, what)
    if v.can_restart(target):
        return Decision(restart, reason, what)
    if voters > 2:
        return degraded(
            Reason.UPGRADE_BLOCKED,
            f"restarting {name} would leave fewer healthy voters than quorum ({voters} voters)",
        )
    # One or two voters tolerate no member down: the user chose no fault tolerance, and
    # refusing would pin the cluster to its version and spec forever. Each restart is a short
    # outage; the member keeps its volume, so no data is at risk. The disruption budget
    # (minAvailable = all of them) would refuse the eviction, so the pod is deleted directly.
    note = (
        f"; with {voters} voting member{'s' if voters > 1 else ''} the cluster is"
        f" unavailable while {name} restarts"
    )
    return Decision(dataclasses.replace(restart, evict=False), reason, what + note)


def _replace(
    v: View, target: EtcdMember, restart: UpgradeMember, reason: Reason, what: str
) -> Decision:
    """A restart of a member whose data is in an emptyDir: it comes back as a new member.

    Three or more voters: its pod is evicted (the disruption budget arbitrates with drains);
    the member is then down without data, and the rules for a lost member remove it (quorum
    permitting) and add it back as a learner. Two voters: the budget refuses every eviction and
    either member down loses quorum, which a member without data could never win back, so the
    member is removed first, while both answer; the other goes on alone (as available as
    before: two voters tolerate no failure either) until the new learner is promoted. One
    voter: its data would be gone with nobody to copy it from; refused.
    """
    name, voters = v.label(target), len(v.voters)
    if voters == 1:
        return degraded(
            Reason.RESTART_WOULD_LOSE_DATA,
            f"{what} is refused: {name} is the only member and keeps its data in an emptyDir,"
            " so restarting it would delete every key. Scale to 3 members first"
            " (spec.replicas: 3); each member is then replaced in turn, copying the data from"
            " the others",
        )
    if voters == 2:
        if not v.can_remove(target):
            return wait(
                Reason.MEMBER_UNHEALTHY,
                f"removing {name} would lose quorum",
            )
        return Decision(
            RemoveMember(target.id, name),
            Reason.REPLACE_MEMBER,
            f"{what}: {name} keeps its data in an emptyDir, so it is replaced: removed now,"
            " then added back as a new learner that copies the data from the other member",
        )
    if not v.can_restart(target):
        return degraded(
            Reason.UPGRADE_BLOCKED,
            f"replacing {name} would leave fewer healthy voters than quorum ({voters} voters)",
        )
    return Decision(
        restart, reason, f"{what}: its emptyDir goes with its pod, so it comes back as a new member"
    )


def roll_outdated(v: View, *, same_version_only: bool = False) -> Decision | None:
    """Voters whose pods were built from an older spec (pod template, etcd tuning, image,
    emptyDir size) are restarted one at a time, exactly like an upgrade. Runs after the
    version rules: a member restarted for a version change picks up the spec as well.
    `same_version_only`: for a caller that runs before the version rules (NOSPACE recovery),
    members whose version would change are left to those rules."""
    pods = v.observed.pods
    spec_version = v.observed.spec.version
    stale = [
        (m, ver)
        for m in v.voters
        if (name := v.name_of(m)) is not None
        and (pod := pods.get(name)) is not None
        and pod.outdated
        and (ver := v.running_version(m)) is not None
        and (ver == spec_version or not same_version_only)
    ]
    if not stale:
        return None
    return restart_in_turn(
        v,
        stale,
        v.observed.spec.version,
        Reason.ROLLING_RESTART,
        lambda name, _: f"restarting {name} to apply the changed spec",
    )


def _undersized(v: View) -> list[str]:
    """Members' claims that are smaller than `spec.storage.size` and could grow now."""
    pvcs = v.observed.pvcs
    return [
        n
        for n in by_ordinal(n for n in pvcs if n in v.member_names)
        if pvcs[n].undersized and pvcs[n].bound and not pvcs[n].deleting
    ]


def expand_volumes(v: View) -> Decision | None:
    """Grow members' claims in place, one per round, when their StorageClass allows it.
    Nothing goes down (the volume grows online), so this needs no quorum check."""
    if v.observed.volume_expansion is not True:
        return None
    small = _undersized(v)
    if not small:
        return None
    return Decision(
        ExpandVolume(small[0], claim_of(v.observed, small[0])),
        Reason.EXPAND_VOLUME,
        f"growing the volume of {small[0]} to spec.storage.size",
    )


def expansion_refused(v: View) -> Decision | None:
    """The claims cannot grow: said once everything else is in sync, so it blocks nothing."""
    if v.observed.volume_expansion is not False:
        return None
    small = _undersized(v)
    if not small:
        return None
    return degraded(
        Reason.VOLUME_EXPANSION_UNSUPPORTED,
        f"spec.storage.size is larger than the volumes of {', '.join(small)}, but their"
        " StorageClass does not allow volume expansion (allowVolumeExpansion is not true);"
        " they keep their size. Enable expansion on the StorageClass if its provisioner"
        " supports it. Members of a cluster of two or more voters are moved onto new claims"
        " of that size one at a time; a single member cannot be without losing its data: scale"
        " to 3 members (spec.replicas: 3) to have it done",
    )
