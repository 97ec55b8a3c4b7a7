"""What is known of the members an in-place rollback restored in its epoch (phase Restoring),
and what a member that lost its data gets.

A restored member that has run etcd may have voted and acknowledged entries. Restored from the
snapshot again under the same ID (same peer URL, same cluster token), it would come back with
less raft state than it had: it could vote twice in a term or forget acknowledged entries. So a
member seen running is never restored from the snapshot again: with its data kept it restarts on
its claim, with its data lost it is removed and comes back as a new learner once the restored
cluster formed, and until then the others are waited for. Members never seen running are still
bootstrapped from the snapshot.

The facts, each durable: etcd's member list (a member publishes its client URLs once it runs;
its name is no such fact, etcd 3.6 lists restored members by name before they ever ran),
the claims' records of members' logs (written once a member is healthy), and `status.rollback`
(`started`, `formed`), written as soon as the operator sees a member running or healthy;
emptyDir members have only the last."""

from __future__ import annotations

from etcd_operator.naming import by_ordinal, cluster_token, member_name
from etcd_operator.planner.model import Observed, RollbackRecord
from etcd_operator.planner.steps import (
    ClusterState,
    CreatePod,
    Decision,
    InitialCluster,
    Reason,
    degraded,
    wait,
)
from etcd_operator.planner.view import View, quorum
from etcd_operator.planner.volumes import claim_of


def seen_running(o: Observed) -> set[str]:
    """Restored members seen running etcd now. During Restoring every pod and current claim is
    the restored cluster's (the old ones are gone and retired)."""
    names = {n for n in o.local_views if n in o.expected_peer_urls}
    names |= {n for n, p in o.pvcs.items() if p.member_id is not None}
    if o.members is not None:
        view = View.of(o, o.members)
        for m in o.members:
            name = view.name_of(m)
            health = o.member_health.get(m.id)
            if name is not None and (m.client_urls or (health is not None and health.reachable)):
                names.add(name)
    return names


def seen_formed(o: Observed) -> bool:
    """A restored member served a quorum read, or a claim records a log (written only then)."""
    if any(p.member_id is not None for p in o.pvcs.values()):
        return True
    if o.members is None:
        return False
    view = View.of(o, o.members)
    return any(view.healthy(m) for m in o.members)


def initial_members(o: Observed) -> list[str]:
    return [member_name(o.cluster.name, i) for i in range(o.spec.replicas)]


def lost(o: Observed, started: set[str]) -> list[str]:
    """Started members whose data is gone: member-init found their volume empty or another's,
    or their pod is gone and no claim kept their data (emptyDir, or a lost claim)."""
    gone = []
    for name in by_ordinal(started):
        pod, pvc = o.pods.get(name), o.pvcs.get(name)
        if (pod is not None and pod.data_lost) or (pod is None and (pvc is None or pvc.deleting)):
            gone.append(name)
    return gone


def restart_on_claim(o: Observed, record: RollbackRecord, started: set[str]) -> Decision | None:
    """A started member whose pod is gone but whose claim is kept restarts on it as itself,
    never restored over: member-init checks the volume holds its own log (a lost one is then
    reported as data lost)."""
    for name in by_ordinal(started):
        pvc = o.pvcs.get(name)
        if name in o.pods or pvc is None or pvc.deleting:
            continue
        member_id = pvc.member_id if pvc.member_id is not None else _listed_id(o, name)
        if member_id is None:
            return wait(
                Reason.ROLLBACK_RESTORING,
                f"rollback: {name} ran in the restored cluster but neither its claim nor a member"
                " list says its member ID yet; its pod is not recreated before one does",
            )
        names = initial_members(o)
        peers = tuple((n, o.expected_peer_urls[n]) for n in names)
        token = cluster_token(o.cluster.name, o.cluster.uid, record.epoch)
        step = CreatePod(
            name,
            InitialCluster(ClusterState.EXISTING, peers, token),
            o.spec.version,
            claim=claim_of(o, name),
            member_id=member_id,
        )
        return Decision(
            step,
            Reason.RESTORE_POD,
            f"rollback: recreating the pod of {name} on its claim, which holds its log from the"
            " restored cluster (never restored from the snapshot again)",
        )
    return None


def _listed_id(o: Observed, name: str) -> int | None:
    if o.members is None:
        return None
    same = View.of(o, o.members).members_named(name)
    return same[0].id if len(same) == 1 else None


def lost_before_forming(o: Observed, gone: list[str]) -> Decision:
    """Started members lost their data before the restored cluster was seen to form: they are
    not restored again under their old IDs; the others may still form it without them (then the
    lost ones are replaced), else nothing safe is left to do but report it."""
    names = initial_members(o)
    left = [n for n in names if n not in gone and not (n in o.pods and o.pods[n].data_lost)]
    which = ", ".join(gone)
    why = (
        f"rollback: {which} ran in the restored cluster and lost its data before the cluster"
        " was seen to form; restored from the snapshot again under the same member ID it could"
        " vote twice in a term or forget acknowledged entries, so it is not"
    )
    if len(left) >= quorum(len(names)):
        return wait(
            Reason.ROLLBACK_RESTORING,
            f"{why}; waiting for {', '.join(left)} to form the cluster, which then replaces it",
        )
    return degraded(
        Reason.MEMBER_DATA_LOST,
        f"{why}. Only {len(left)} of {len(names)} members are left, too few to form the"
        " restored cluster without it; the operator will not guess which data to keep",
    )
