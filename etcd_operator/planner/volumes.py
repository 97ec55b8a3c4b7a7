"""Whose data a volume holds, from the records on its claim, and the rules that keep them.

The operator writes three facts on a member's claim, each at the step that makes it true:
- the cluster UID, when it creates the claim;
- the member ID whose raft log the volume holds, once that member has started on it
  (`RecordVolume`; before a learner is promoted, and for the initial members before the cluster
  counts as formed);
- that the member was removed (`RetireVolume`), once it has left the member list and its pod is
  gone.

From them, never from whether etcd answers right now, follow: which claim a member uses, which
log a pod must find on it, whether the cluster has ever formed, and which claims the operator may
never use or delete (another cluster's, or a removed member's kept by the retention policy).
"""

from __future__ import annotations

from collections.abc import Iterable

from etcd_operator.naming import by_ordinal, pvc_name
from etcd_operator.planner.model import EtcdMember, Observed, PvcRetention, PvcState
from etcd_operator.planner.steps import (
    Decision,
    DeletePVC,
    Reason,
    RecordVolume,
    RetireVolume,
    degraded,
)
from etcd_operator.planner.view import View


def split_claims(
    claims: Iterable[tuple[str, PvcState]], cluster_uid: str
) -> tuple[dict[str, PvcState], dict[str, PvcState]]:
    """(the claim each member name uses now, every other claim by claim name).

    `claims` pairs each claim labelled with this cluster's name with its member's name. A claim
    is a member's current one unless it records another cluster's UID or a removed member; when
    several qualify (only a human can cause that), the one with a record wins, then the
    default name."""
    current: dict[str, PvcState] = {}
    others: dict[str, PvcState] = {}
    candidates: dict[str, list[PvcState]] = {}
    for member, pvc in claims:
        foreign = pvc.cluster_uid is not None and pvc.cluster_uid != cluster_uid
        if foreign or pvc.retired:
            others[pvc.claim] = pvc
        else:
            candidates.setdefault(member, []).append(pvc)
    for member, pvcs in candidates.items():
        ranked = sorted(
            pvcs, key=lambda p: (p.member_id is None, p.claim != pvc_name(member), p.claim)
        )
        current[member] = ranked[0]
        others.update((p.claim, p) for p in ranked[1:])
    return current, others


def is_foreign(o: Observed, pvc: PvcState) -> bool:
    return pvc.cluster_uid is not None and pvc.cluster_uid != o.cluster.uid


def foreign_claims(o: Observed) -> list[str]:
    return sorted(c for c, p in o.other_claims.items() if is_foreign(o, p))


def formed(o: Observed) -> bool:
    """The cluster has formed once: status says so, or a claim of ours records a member's log.
    Either outlives every member; a cluster that formed is never bootstrapped again."""
    if o.bootstrapped:
        return True
    claims = [*o.pvcs.values(), *o.other_claims.values()]
    return any(p.member_id is not None and not is_foreign(o, p) for p in claims)


def claim_of(o: Observed, member: str) -> str:
    """The claim a new pod of `member` uses: its current one, else the default name when that is
    free, else the first free `<default>-<n>` (the default holds a retained or foreign volume)."""
    current = o.pvcs.get(member)
    if current is not None:
        return current.claim or pvc_name(member)
    taken = {p.claim for p in o.other_claims.values()} | {p.claim for p in o.pvcs.values()}
    name, n = pvc_name(member), 1
    while name in taken:
        name, n = f"{pvc_name(member)}-{n}", n + 1
    return name


def owned(o: Observed, pvc: PvcState) -> bool:
    """Only a claim that records this cluster's UID may ever be deleted by the operator."""
    return pvc.cluster_uid == o.cluster.uid


def fresh_for(o: Observed, pvc: PvcState, member_id: int | None) -> bool:
    """A claim a member that never started may use: ours, and holding no other member's log."""
    return owned(o, pvc) and pvc.member_id in (None, member_id)


def record_volumes(v: View) -> Decision | None:
    """Record the log a started, healthy member keeps on its claim (once per member)."""
    for m in v.sorted_members():
        name = v.name_of(m)
        pod = v.observed.pods.get(name) if name is not None else None
        pvc = v.observed.pvcs.get(name) if name is not None else None
        if name is None or pod is None or pvc is None or pod.deleting or not m.started:
            continue
        if not v.healthy(m) or (pvc.member_id == m.id and owned(v.observed, pvc)):
            continue
        return Decision(
            RecordVolume(name, pvc.claim or pvc_name(name), m.id),
            Reason.RECORD_VOLUME,
            f"recording on claim {pvc.claim or pvc_name(name)} that it holds {name}'s log"
            f" (member {m.id:x})",
        )
    return None


def retire_removed(v: View) -> Decision | None:
    """A claim whose member left the member list, once its pod is gone, is retired: it is never
    started again, and a new member of that name gets a fresh claim."""
    ids = {m.id for m in v.members}
    for name in by_ordinal(v.observed.pvcs):
        pvc = v.observed.pvcs[name]
        if name in v.observed.pods or pvc.deleting:
            continue
        if pvc.member_id is not None and pvc.member_id not in ids:
            return _retire(v, name, pvc, f"member {pvc.member_id:x} was removed")
    return None


def _retire(v: View, name: str, pvc: PvcState, why: str) -> Decision:
    claim = pvc.claim or pvc_name(name)
    o = v.observed
    if o.spec.pvc_when_scaled is PvcRetention.DELETE and owned(o, pvc):
        return Decision(
            DeletePVC(name, claim), Reason.DELETE_SCALED_VOLUME, f"{why}; deleting claim {claim}"
        )
    return Decision(
        RetireVolume(name, claim, pvc.member_id or 0),
        Reason.RETIRE_VOLUME,
        f"{why}; claim {claim} is kept (pvcRetentionPolicy) and will not be used again",
    )


def claim_for_new_member(v: View, name: str, member: EtcdMember | None) -> Decision | None:
    """Before a member that never started gets a pod: a current claim holding some other log
    (a removed incarnation, or a claim from before records) must make way, by the retention
    policy. None when the name may go ahead (no claim, or a fresh one of ours)."""
    pvc = v.observed.pvcs.get(name)
    member_id = member.id if member is not None else None
    if pvc is None or fresh_for(v.observed, pvc, member_id):
        return None
    holder = f"member {pvc.member_id:x}'s log" if pvc.member_id is not None else "unknown data"
    return _retire(v, name, pvc, f"claim of {name} holds {holder}, not a new member's")


def foreign_volumes(o: Observed) -> Decision | None:
    """Claims of an earlier cluster of the same name are reported and left alone: the operator
    neither starts a member on them nor deletes them."""
    foreign = foreign_claims(o)
    if not foreign:
        return None
    uids = sorted({str(o.other_claims[c].cluster_uid) for c in foreign})
    return degraded(
        Reason.FOREIGN_VOLUME,
        f"claims {', '.join(foreign)} hold data of an earlier EtcdCluster named"
        f" {o.cluster.name} (uid {', '.join(uids)}), kept by its retention policy; they are left"
        " alone. Delete them to bootstrap this cluster afresh, or restore their data from a"
        " backup",
    )
