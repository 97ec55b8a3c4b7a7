"""Downgrade by one minor version with etcd's downgrade API (etcd 3.6 and later).

Once every member runs the higher minor, etcd's cluster version has moved up and a member
started with the older binary would be refused. etcd 3.6 can go back one minor:
`EnableDowngrade` (validate, then enable) makes etcd lower its cluster version, then each
member its storage version, to the target; only then are members restarted with the target's
binary, one at a time with the upgrade's rules (followers first, the leader last after moving
leadership); etcd ends the downgrade itself once every member runs the target. Setting
`spec.version` back up while it is enabled cancels it; the upgrade rules then roll forward.

Every fact is durable and etcd's own: which version each member runs (its pod's image), and
the downgrade target and storage version 3.6 members report. A restarted operator reads them
again and carries on; nothing is remembered in between.
"""

from __future__ import annotations

from etcd_operator.planner.model import EtcdMember
from etcd_operator.planner.rollout import restart_in_turn
from etcd_operator.planner.steps import (
    CancelDowngrade,
    Decision,
    Degraded,
    EnableDowngrade,
    Reason,
    degraded,
    wait,
)
from etcd_operator.planner.view import View
from etcd_operator.versions import (
    Version,
    VersionChange,
    parse_version,
    same_minor,
    version_change,
)

FIRST_WITH_DOWNGRADE = Version(3, 6, 0)
"""etcd gained the downgrade API (and storage versions) in 3.6."""


def cancel_downgrade(v: View) -> Decision | None:
    """etcd's downgrade is enabled to another minor than `spec.version` asks for: cancel it.
    It takes nothing away (quorum is checked first), so it runs before the rules for stalled
    and unhealthy members: members rolled forward or repaired meanwhile must not find etcd
    still holding its cluster version at the target."""
    desired = v.observed.spec.version
    enabled = _enabled(v)
    if enabled is None or same_minor(enabled[1], desired):
        return None
    member, target = enabled
    return Decision(
        CancelDowngrade(member.id, v.label(member)),
        Reason.CANCEL_DOWNGRADE,
        f"spec.version is {desired}: cancelling etcd's downgrade to {target}; members then"
        " move to the desired version as in an upgrade",
    )


def downgrade(v: View) -> Decision | None:
    """The next step of a downgrade, or None when none is asked for or in progress. Runs after
    the rules that make the cluster calm (every member healthy, no learner, no alarm, at the
    desired size), before the upgrade rules."""
    cancel = cancel_downgrade(v)  # runs earlier in the chain too; here for completeness
    if cancel is not None:
        return cancel
    desired = v.observed.spec.version
    enabled = _enabled(v)
    stale = [
        (m, ver)
        for m in v.voters
        if (ver := v.running_version(m)) is not None
        and version_change(ver, desired) is VersionChange.MINOR_ROLLBACK
    ]
    if not stale:
        return None
    if enabled is None and (len(stale) < len(v.voters) or v.rollout_allowed(stale[0][1], desired)):
        # Some voter runs another minor: an unfinished upgrade (the cluster version never
        # moved), which the upgrade rules roll back, or a change they refuse.
        return None

    def what(name: str, ver: str) -> str:
        return f"downgrading {name} from {ver} to {desired}"

    restart = restart_in_turn(v, stale, desired, Reason.DOWNGRADE, what)
    if isinstance(restart.step, Degraded):
        return restart  # e.g. one member on an emptyDir: refused before anything changes
    if enabled is None:
        return _enable(v, stale, desired)
    if v.observed.status_downgrade is None:
        # Recorded first: a member restarted while no other answers (one member) must start
        # at the target, and only this record says so then.
        return wait(
            Reason.DOWNGRADE_PENDING,
            f"recording etcd's downgrade to {enabled[1]} in status before a member restarts",
        )
    moving = [
        v.label(m)
        for m, _ in stale
        if not same_minor(_storage(v, m) or "", desired)  # its data is still at the higher minor
    ]
    if moving:
        return wait(
            Reason.DOWNGRADE_PENDING,
            f"etcd is lowering the storage version of {', '.join(moving)} to"
            f" {_minor(desired)}; members restart with {desired} once it has",
        )
    return restart


def _enable(v: View, stale: list[tuple[EtcdMember, str]], desired: str) -> Decision:
    """Every voter runs the higher minor (else the upgrade rules roll back)."""
    running = max((ver for _, ver in stale), key=lambda ver: parse_version(ver) or Version(0, 0, 0))
    current = parse_version(running)
    if current is None or current < FIRST_WITH_DOWNGRADE:
        return degraded(
            Reason.UPGRADE_BLOCKED,
            f"every member runs {running}: etcd has moved its cluster version, and etcd"
            f" {_minor(running)} has no downgrade API (etcd supports downgrades from"
            f" {FIRST_WITH_DOWNGRADE.major}.{FIRST_WITH_DOWNGRADE.minor} on); set spec.version"
            f" back to {running}, or restore a backup taken before the upgrade",
        )
    unsettled = [v.label(m) for m, ver in stale if not same_minor(_storage(v, m) or "", ver)]
    if unsettled:
        # Right after an upgrade (or a start) etcd still moves its versions up; a downgrade
        # enabled now would be refused.
        return wait(
            Reason.DOWNGRADE_PENDING,
            f"etcd has not settled the storage version of {', '.join(unsettled)} at"
            f" {_minor(running)} yet; the downgrade to {desired} starts once it has",
        )
    return Decision(
        EnableDowngrade(desired),
        Reason.ENABLE_DOWNGRADE,
        f"every member runs {_minor(running)}: asking etcd to downgrade the cluster to"
        f" {_minor(desired)} (downgrade validate, then enable); members then restart with"
        f" {desired} one at a time",
    )


def _enabled(v: View) -> tuple[EtcdMember, str] | None:
    """A voter that reports an enabled downgrade, and its target (only 3.6 members say)."""
    for m in v.voters:
        h = v.observed.member_health.get(m.id)
        if h is not None and h.reachable and h.downgrade_target:
            return m, h.downgrade_target
    return None


def _storage(v: View, m: EtcdMember) -> str | None:
    h = v.observed.member_health.get(m.id)
    return h.storage_version if h is not None and h.reachable else None


def _minor(version: str) -> str:
    parsed = parse_version(version)
    return f"{parsed.major}.{parsed.minor}" if parsed is not None else version
