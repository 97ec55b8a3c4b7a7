"""A majority of voters lost for good: report it (`Manual`) or rebuild from a survivor
(`FromSurvivor`).

Which members are lost comes from durable records only: member-init's refusal to start a
member whose volume no longer holds its log (`PodState.data_lost`), a member's claim gone or
being deleted, or (emptyDir) its pod gone. A member that is merely down or restarting is not
lost, and while the members not lost could still form a quorum nothing is forced.

The membership is the one the most up-to-date member keeps in its own log (it answers its
member list and raft position locally, without a quorum). `FromSurvivor` starts the survivor
with the highest raft term, then index, once with `--force-new-cluster`: etcd keeps its data
and ID and makes it the only member. Status records the start before its pod is taken down
and the end once etcd shows it alone; the pod's annotation records the flag. So a restarted
operator resumes, never forces twice, and never leaves the flag on a pod that later restarts.
The heal and scale rules then add the others back as new members on fresh volumes.
"""

from __future__ import annotations

from etcd_operator.naming import by_ordinal, cluster_token, ordinal_of
from etcd_operator.planner.model import BackupFacts, EtcdMember, LocalView, Observed
from etcd_operator.planner.steps import (
    ClusterState,
    Decision,
    EndForcedStart,
    ForceNewCluster,
    InitialCluster,
    Reason,
    degraded,
    wait,
)
from etcd_operator.planner.view import View, quorum, version_for_new_pod
from etcd_operator.planner.volumes import claim_of

FROM_SURVIVOR = "FromSurvivor"
FROM_LATEST_BACKUP = "FromLatestBackup"
MANUAL = "Manual"
_NAMED = 3  # skipped backups named in a message (a schedule may have kept many)
LOST_FOR_GOOD = "quorum lost for good"  # how a QuorumLost verdict that nothing will heal begins


def lost_for_good(message: str) -> bool:
    """A QuorumLost message is the verdict that nothing comes back by itself (news worth a
    Warning even when the condition already said QuorumLost while members were starting)."""
    return message.startswith(LOST_FOR_GOOD)


def forced_start(o: Observed) -> Decision | None:
    """A rebuild under way: finish it before any other rule (a pod still carrying
    `--force-new-cluster` would drop every member added meanwhile at its next start)."""
    record = o.forced_start
    flagged = by_ordinal(n for n, p in o.pods.items() if n in o.expected_peer_urls and p.forced)
    if flagged:
        name = flagged[0]
        if o.pods[name].deleting:
            return wait(Reason.POD_TERMINATING, f"pod of {name} started the rebuild; it is going")
        pvc = o.pvcs.get(name)
        member_id = record.member_id if record is not None else pvc.member_id if pvc else None
        if member_id is not None and (_alone(o, member_id) or (record and record.done)):
            return Decision(
                EndForcedStart(name, member_id),
                Reason.FORCED_START_DONE,
                f"etcd member {member_id:x} ({name}) is now the only member; rebuilding its pod"
                " without --force-new-cluster, then the others rejoin as new members on fresh"
                " volumes. Writes acknowledged only by the lost members may be gone",
            )
        return wait(
            Reason.FORCING_NEW_CLUSTER,
            f"waiting for {name} to start alone with --force-new-cluster",
        )
    if record is None or record.done:
        return None
    if o.members is not None:
        # A quorum answers: the survivor is alone already (its flagged pod went early), or a
        # quorum came back before the forced start. Either way nothing is left to force.
        return Decision(
            EndForcedStart(record.member, record.member_id),
            Reason.FORCED_START_DONE,
            f"a quorum answers again; the rebuild from {record.member} is over",
        )
    pod = o.pods.get(record.member)
    if pod is not None and pod.deleting:
        return wait(Reason.POD_TERMINATING, f"pod of {record.member} is going before its rebuild")
    return _force(o, record.member, record.member_id, ())


def quorum_lost_for_good(o: Observed) -> Decision | None:
    """No member list answers. When the members that are not lost for good cannot form a
    quorum, report exactly that (Manual) or rebuild from the most up-to-date one
    (FromSurvivor). None when a quorum may still come back."""
    views = {
        n: lv
        for n, lv in o.local_views.items()
        if n in o.pods and not o.pods[n].data_lost and not o.pods[n].deleting
    }
    if not views:
        return _no_survivor(o)
    newest = max(views.items(), key=lambda kv: _rank(kv[0], kv[1]))[1]
    v = View.of(o, newest.members)
    lost = {name: why for m in v.voters if (name := v.name_of(m)) and (why := _lost(o, m, name))}
    survivors = [m for m in v.voters if v.name_of(m) not in lost]
    if len(survivors) >= quorum(len(v.voters)):
        return None  # the members not lost may come back: restarting is not lost
    named = [(n, m) for m in survivors if (n := v.name_of(m)) is not None]
    reported = {n: views[n] for n, m in named if n in views and views[n].member_id == m.id}
    waiting = [n for n, _ in named if n not in reported]
    best = max(reported.items(), key=lambda kv: _rank(kv[0], kv[1]))[0] if reported else None
    facts = _facts(lost, reported, waiting)
    mode = o.spec.quorum_loss
    if best is None or waiting or mode != FROM_SURVIVOR or o.spec.empty_dir:
        return degraded(Reason.QUORUM_LOST, _manual(o, facts, best, waiting))
    chosen = reported[best]
    return _force(
        o,
        best,
        chosen.member_id,
        tuple(by_ordinal(lost)),
        f"quorum lost for good; {facts}. Rebuilding from {best}, the most up-to-date survivor:"
        " starting it once with --force-new-cluster",
    )


def _rank(name: str, lv: LocalView) -> tuple[int, int, int, int]:
    """Most up-to-date first: highest raft term, then index, then applied index; ties go to
    the lowest ordinal so the choice is the same every round."""
    return (lv.raft_term, lv.raft_index, lv.applied_index, -(ordinal_of(name) or 0))


def _alone(o: Observed, member_id: int) -> bool:
    """etcd's member list (a quorum read) holds `member_id` as its only voter."""
    voters = [m for m in o.members or () if not m.is_learner]
    return [m.id for m in voters] == [member_id]


def _lost(o: Observed, m: EtcdMember, name: str) -> str | None:
    """Why `m`'s data is gone for good, from durable records; None when it may come back."""
    if name in o.local_views:
        return None  # its etcd answers: it runs on its data
    pod, pvc = o.pods.get(name), o.pvcs.get(name)
    if pod is not None and pod.data_lost:
        return "its volume no longer holds its log"
    if o.spec.empty_dir:
        return "its pod, and the emptyDir holding its data, are gone" if pod is None else None
    if pvc is None:
        return "its volume claim is gone"
    if pvc.deleting:
        return "its volume claim is being deleted"
    if pvc.member_id is not None and pvc.member_id != m.id:
        return f"its claim holds member {pvc.member_id:x}'s log"
    return None


def _facts(lost: dict[str, str], reported: dict[str, LocalView], waiting: list[str]) -> str:
    gone = "; ".join(f"{n}: {lost[n]}" for n in by_ordinal(lost))
    alive = ", ".join(
        f"{n} (member {lv.member_id:x}, raft term {lv.raft_term}, index {lv.raft_index})"
        for n, lv in sorted(reported.items(), key=lambda kv: kv[0])
    )
    out = f"lost: {gone}; surviving with data: {alive or 'none answering'}"
    if waiting:
        out += f"; not answering yet (not lost, may hold newer data): {', '.join(waiting)}"
    return out


def _manual(o: Observed, facts: str, best: str | None, waiting: list[str]) -> str:
    mode = o.spec.quorum_loss
    if mode == FROM_SURVIVOR and waiting:
        why = f"FromSurvivor waits until {', '.join(waiting)} report their raft position. "
    elif mode == FROM_SURVIVOR and o.spec.empty_dir:
        why = "FromSurvivor cannot restart a survivor whose data is in an emptyDir. "
    elif mode == FROM_LATEST_BACKUP:
        why = _no_backup(o)
    elif mode not in (MANUAL, FROM_SURVIVOR):
        why = f"spec.recovery.quorumLoss {mode} is not supported by this operator; as Manual. "
    else:
        why = ""
    survivor = (
        f"set spec.recovery.quorumLoss to FromSurvivor to rebuild from {best} (the most"
        " up-to-date survivor; writes acknowledged only by lost members may be gone), or "
        if best is not None
        else ""
    )
    return (
        f"{LOST_FOR_GOOD}: {facts}. {why}Nothing was changed: no pod or volume is deleted."
        f" To recover, {survivor}restore a backup with an EtcdRestore into a new cluster"
    )


def _no_backup(o: Observed) -> str:
    """Why FromLatestBackup did not act: no backup of this cluster, naming those it skipped
    as an earlier cluster's of the same name (its old data must never return unasked)."""
    why = (
        "FromLatestBackup found no Succeeded EtcdBackup of this cluster to recreate it from"
        " (or its snapshot failed verification); as Manual"
    )
    earlier = sorted(o.rollback.earlier, key=_completed, reverse=True)
    if earlier:
        newest = [b.name for b in earlier][:_NAMED]
        more = f" and {len(earlier) - len(newest)} more" if len(earlier) > len(newest) else ""
        uids = ", ".join(sorted({str(b.cluster_uid) for b in earlier}))
        why += (
            f". It skipped EtcdBackup {', '.join(newest)}{more}, taken of an earlier EtcdCluster"
            f" {o.cluster.name} (UID {uids}; this one is {o.cluster.uid}): never restored"
            " automatically; to restore one deliberately, name it in spec.rollback with"
            " allowOtherCluster: true"
        )
    return f"{why}. "


def _completed(b: BackupFacts) -> tuple[float, str]:
    return (b.completed_at.timestamp() if b.completed_at else 0.0, b.name)


def _no_survivor(o: Observed) -> Decision | None:
    """Every member pod's member-init refuses (its volume lost its log): nobody survives."""
    pods = [n for n in by_ordinal(o.pods) if n in o.expected_peer_urls]
    if not pods or not all(o.pods[n].data_lost for n in pods):
        return None
    why = _no_backup(o) if o.spec.quorum_loss == FROM_LATEST_BACKUP else ""
    return degraded(
        Reason.QUORUM_LOST,
        f"{LOST_FOR_GOOD} and no member survives with data: the volumes of"
        f" {', '.join(pods)} no longer hold their logs. {why}Nothing was changed: no pod or"
        " volume is deleted. Restore a backup with an EtcdRestore into a new cluster",
    )


def _force(
    o: Observed, name: str, member_id: int, lost: tuple[str, ...], message: str = ""
) -> Decision:
    pod = o.pods.get(name)
    running = [pod.version] if pod is not None and pod.version else []
    token = cluster_token(o.cluster.name, o.cluster.uid)
    # etcd ignores --initial-cluster when its data directory holds a member; it must parse.
    initial = InitialCluster(ClusterState.EXISTING, ((name, o.expected_peer_urls[name]),), token)
    step = ForceNewCluster(
        name,
        member_id,
        lost,
        version_for_new_pod(o, running),
        initial,
        claim=claim_of(o, name),
    )
    return Decision(
        step,
        Reason.FORCE_NEW_CLUSTER,
        message or f"resuming the rebuild from {name}: starting it with --force-new-cluster",
    )
