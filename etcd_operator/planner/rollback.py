"""In-place rollback to a backup: the same EtcdCluster (name, Services, client endpoint) is
bootstrapped again, every initial member restored from a verified snapshot.

The sequence, each phase read back from `status.rollback` (written at the step that makes it
true) and from the claims' own records, so a kill at any point resumes it:

1. a confirmed request for a Succeeded backup of this cluster; its snapshot verified by a pod
   (sha256 and `etcdutl snapshot restore` into scratch space) before anything is touched;
2. `Stopping` recorded (with the snapshot's revision and the last revision served), then every
   member pod deleted and every claim the members used retired: kept, never started again, so
   the data before the rollback stays recoverable; nothing is ever deleted here;
3. `Restoring` recorded once no old pod and no current claim is left; the initial members
   start on fresh claims from the snapshot with a new cluster token (the epoch); the members
   seen running, and that they formed the cluster, are recorded as soon as they are seen: a
   member seen running is never restored from the snapshot again, and once the cluster formed
   one that lost its data is replaced as in any running cluster (planner/restored.py);
4. `Completed` recorded once every initial member is a voter again, healthy, its claim
   recording its log.

Refusals (not confirmed, no such backup, not Succeeded, another cluster's, an unreadable or
failing snapshot, a cluster that never formed) change nothing: a condition and an Event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from etcd_operator.naming import by_ordinal, pvc_name
from etcd_operator.planner import restored
from etcd_operator.planner.model import Observed, RollbackPhase, RollbackRecord, RollbackState
from etcd_operator.planner.recovery_facts import majority_permanently_lost
from etcd_operator.planner.steps import (
    Bootstrap,
    CreatePod,
    Decision,
    Degraded,
    DeletePod,
    InSync,
    Reason,
    RecordRollback,
    RetireVolume,
    VerifyBackup,
    acts,
    degraded,
    wait,
)
from etcd_operator.planner.view import View
from etcd_operator.planner.volumes import formed, record_volumes

Bootstrapper = Callable[..., Decision]
"""decide's bootstrap of the initial members, given `epoch`, `restore` and `started`."""

IN_FLIGHT = (RollbackPhase.STOPPING, RollbackPhase.RESTORING)
QUORUM_LOSS = "QuorumLoss"  # RollbackRequest.cause of spec.recovery's FromLatestBackup


def decide_rollback(
    o: Observed,
    bootstrap: Bootstrapper,
    otherwise: Callable[[], Decision],
    formed_rules: Callable[[Observed], Decision],
) -> Decision | None:
    """The rollback's next step, or None when no rollback is requested or under way.
    `otherwise`: what the cluster needs without the rollback; a refused request does not stop
    it (a member is still healed), and is reported once there is nothing else to do.
    `formed_rules`: decide's rules for a cluster that formed, for the restored one."""
    state = o.rollback
    record = state.record
    if record is not None and record.phase in IN_FLIGHT:
        # Under way: finished whatever the spec says now (the old members are already gone).
        if record.phase is RollbackPhase.STOPPING:
            return _stop(o, record)
        return _restore(o, record, bootstrap, formed_rules)
    request = state.request
    if request is not None and _done(state):
        request = None
    if request is None and state.recovery is not None and majority_permanently_lost(o):
        request = state.recovery  # spec.recovery.quorumLoss: FromLatestBackup
    if request is None:
        return None
    decision = _start(o, replace(state, request=request))
    if decision.reason is Reason.ROLLBACK_REFUSED:
        other = otherwise()
        requested = request is state.request  # else a recovery: its refusal says more
        if acts(other.step) or (requested and isinstance(other.step, Degraded)):
            return other
    return decision


def _done(state: RollbackState) -> bool:
    """This request's rollback completed: it is never repeated while the spec names it, not
    even after a quorum-loss recovery rolled back to another backup since."""
    record, backup = state.record, state.backup
    if record is None or record.phase is not RollbackPhase.COMPLETED or state.request is None:
        return False
    return any(
        name == state.request.backup and (backup is None or not uid or uid == backup.uid)
        for name, uid in record.done()
    )


def refusal(o: Observed, state: RollbackState | None = None) -> str | None:
    """Why the requested rollback may not start (nothing changes then); None when it may."""
    state = state or o.rollback
    request, backup = state.request, state.backup
    assert request is not None
    name = request.backup
    if not request.confirmed:
        want = f"{o.cluster.name}/{name}"  # api.rollback_spec.confirmation
        return f"spec.rollback.confirm must be exactly {want!r} to roll back to {name}"
    if not formed(o):
        return (
            f"the cluster never formed, so there is nothing to roll back to {name};"
            " spec.bootstrap.restore starts a new cluster from a snapshot"
        )
    if backup is None:
        return f"EtcdBackup {name} does not exist in namespace {o.cluster.namespace}"
    if backup.phase != "Succeeded":
        return f"EtcdBackup {name} is {backup.phase or 'not started'}, not Succeeded"
    if backup.cluster_name != o.cluster.name and not request.allow_other_cluster:
        return (
            f"EtcdBackup {name} was taken of cluster {backup.cluster_name!r}, not of"
            f" {o.cluster.name}; set spec.rollback.allowOtherCluster to accept it"
        )
    earlier = backup.cluster_uid is not None and backup.cluster_uid != o.cluster.uid
    if earlier and not request.allow_other_cluster:
        return (
            f"EtcdBackup {name} was taken of an earlier EtcdCluster {o.cluster.name} (UID"
            f" {backup.cluster_uid}, this one is {o.cluster.uid}); set"
            " spec.rollback.allowOtherCluster to accept it"
        )
    if backup.unreadable is not None:
        return f"EtcdBackup {name}: {backup.unreadable}"
    check = state.check
    if check is not None and check.finished and not check.ok:
        return f"the snapshot of EtcdBackup {name} failed verification: {check.problem}"
    return None


def _start(o: Observed, state: RollbackState) -> Decision:
    refused = refusal(o, state)
    if refused is not None:
        return degraded(Reason.ROLLBACK_REFUSED, f"rollback refused, nothing changed: {refused}")
    request, backup, check = state.request, state.backup, state.check
    assert request is not None and backup is not None
    if check is None:
        return Decision(
            VerifyBackup(backup.name, backup.uid),
            Reason.ROLLBACK_VERIFY,
            f"verifying the snapshot of EtcdBackup {backup.name} before rolling back to it",
        )
    if not check.finished:
        return wait(
            Reason.ROLLBACK_VERIFYING, f"verifying the snapshot of EtcdBackup {backup.name}"
        )
    served = [h.revision for h in o.member_health.values() if h.reachable and h.revision]
    if not served and state.last_seen_revision is not None:
        served = [state.last_seen_revision]  # no member answers: the last one seen
    epoch = state.record.epoch + 1 if state.record is not None else 1
    step = RecordRollback(
        RollbackPhase.STOPPING,
        backup.name,
        backup.uid,
        epoch,
        cause=request.cause,
        revision=check.revision,
        sha256=check.sha256,
        from_revision=max(served) if served else None,
    )
    lost = ""
    if served and check.revision is not None:
        top = max(served)
        gone = f"{top - check.revision} revisions lost"
        if top < check.revision:  # only a stale status.lastSeenRevision is below the backup's
            gone = "the last revision seen, older than the backup's: how much is lost is unknown"
        lost = f" from revision {top} ({gone})"
    why = "a majority of members lost its data for good; " if request.cause == QUORUM_LOSS else ""
    return Decision(
        step,
        Reason.ROLLBACK_STARTED,
        f"{why}rolling back{lost} to EtcdBackup {backup.name} (revision {check.revision}):"
        " stopping every member; their volumes are kept, retired",
    )


def _ours(o: Observed) -> list[str]:
    return by_ordinal(n for n in o.pods if n in o.expected_peer_urls)


def _stop(o: Observed, record: RollbackRecord) -> Decision:
    """Every old pod deleted, then every claim a member used retired; then Restoring."""
    pods = _ours(o)
    running = [n for n in pods if not o.pods[n].deleting]
    if running:
        name = running[0]
        return Decision(DeletePod(name), Reason.ROLLBACK_STOP, f"rollback: stopping member {name}")
    if pods:
        return wait(Reason.POD_TERMINATING, f"rollback: pods {pods} are terminating")
    for name in by_ordinal(o.pvcs):
        pvc = o.pvcs[name]
        if pvc.deleting:
            continue
        claim = pvc.claim or pvc_name(name)
        return Decision(
            RetireVolume(name, claim, pvc.member_id or 0),
            Reason.ROLLBACK_STOP,
            f"rollback: retiring claim {claim} of {name} (kept with the data from before the"
            " rollback, never started again)",
        )
    terminating = [n for n, p in o.pvcs.items() if p.deleting]
    if terminating:
        return wait(Reason.VOLUME_TERMINATING, f"rollback: claims of {terminating} terminating")
    return Decision(
        replace(_restating(record), phase=RollbackPhase.RESTORING),
        Reason.ROLLBACK_RESTORE,
        f"rollback: every member stopped; restoring them from EtcdBackup {record.backup}",
    )


def _restating(record: RollbackRecord) -> RecordRollback:
    """A record step carrying the record's identity and what it saw of the restored members
    (the shell keeps its other facts)."""
    return RecordRollback(
        record.phase,
        record.backup,
        record.backup_uid,
        record.epoch,
        started=record.started,
        formed=record.formed,
    )


def _restore(
    o: Observed,
    record: RollbackRecord,
    bootstrap: Bootstrapper,
    formed_rules: Callable[[Observed], Decision],
) -> Decision:
    """The initial members from the snapshot (decide's own bootstrap, new epoch), then
    Completed once they formed and recorded their logs on their claims. Members seen running
    are recorded first and never restored from the snapshot again (planner/restored.py)."""
    started = set(record.started) | restored.seen_running(o)
    formed = record.formed or restored.seen_formed(o)
    if started != set(record.started) or formed != record.formed:
        seen = tuple(by_ordinal(started))
        return Decision(
            replace(_restating(record), started=seen, formed=formed),
            Reason.ROLLBACK_MEMBERS_SEEN,
            f"rollback: restored members {', '.join(seen)} seen running"
            + ("; the restored cluster has formed" if formed else ""),
        )
    if formed:
        return _restored(o, record, formed_rules)
    restart = restored.restart_on_claim(o, record, started)
    if restart is not None:
        return restart
    members = o.members
    names = [n for n in o.expected_peer_urls if n in o.pods]
    missing = len(names) < o.spec.replicas
    gone = restored.lost(o, started)
    if members is None or missing or gone:
        decision = bootstrap(
            replace(o, members=None),
            epoch=record.epoch,
            restore=True,
            started=frozenset(started),
        )
        if isinstance(decision.step, Bootstrap | CreatePod):
            return Decision(decision.step, Reason.ROLLBACK_RESTORE, f"rollback: {decision.message}")
        if gone:
            return restored.lost_before_forming(o, gone)
        if decision.reason is Reason.BOOTSTRAPPING:
            return wait(
                Reason.ROLLBACK_RESTORING,
                f"rollback: waiting for the members restored from {record.backup} to form",
            )
        return decision
    return _complete(o, record, View.of(o, members))


def _restored(
    o: Observed, record: RollbackRecord, formed_rules: Callable[[Observed], Decision]
) -> Decision:
    """The restored cluster formed: it is a running cluster. A member that lost its data is
    removed while quorum holds and added back as a learner, by the rules for a running
    cluster (which wait or report a lost quorum); once every initial member is a voter again
    on its pod, Completed."""
    view = View.of(o, o.members) if o.members is not None else None
    if view is not None and _whole(o, view):
        return _complete(o, record, view)
    decision = formed_rules(o)
    if isinstance(decision.step, InSync) and view is not None:
        return _complete(o, record, view)
    return replace(decision, message=f"rollback: {decision.message}")


def _whole(o: Observed, view: View) -> bool:
    """Each initial member is exactly one voter, on a pod that runs it on its data (one that
    answers does, whatever an old init status says); nothing else."""
    names = restored.initial_members(o)
    if len(view.members) != len(names):
        return False
    for name in names:
        same, pod = view.members_named(name), o.pods.get(name)
        if len(same) != 1 or same[0].is_learner or pod is None:
            return False
        if pod.data_lost and not view.answers(same[0]):
            return False
    return True


def _complete(o: Observed, record: RollbackRecord, view: View) -> Decision:
    recorded = record_volumes(view)
    if recorded is not None:
        return recorded
    unhealthy = [view.label(m) for m in view.sorted_members() if not view.healthy(m)]
    if unhealthy:
        return wait(
            Reason.ROLLBACK_RESTORING, f"rollback: waiting for {', '.join(unhealthy)} to be healthy"
        )
    return Decision(
        replace(_restating(record), phase=RollbackPhase.COMPLETED),
        Reason.ROLLBACK_COMPLETED,
        f"rolled back to EtcdBackup {record.backup}: the cluster serves its data under the same"
        " name and Services",
    )
