"""Rules for a bootstrapped cluster whose member list is known: heal, scale, upgrade.

Rules run in priority order and the first that applies wins. Everything before "scale" exists to
get back to exactly one healthy member per name with no learner in flight; only then may a new
membership change start.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from etcd_operator.naming import by_ordinal, cluster_token, member_name
from etcd_operator.planner.auth import auth_change
from etcd_operator.planner.corrupt_alarm import corrupt_alarm
from etcd_operator.planner.corruption import replace_corrupt
from etcd_operator.planner.downgrade import cancel_downgrade, downgrade
from etcd_operator.planner.model import EtcdMember, Observed, PodPhase
from etcd_operator.planner.recovery import forced_start
from etcd_operator.planner.replace import (
    grow_by_replacement,
    replace_requested,
    replacement_refused,
)
from etcd_operator.planner.rollout import (
    expand_volumes,
    expansion_refused,
    restart_in_turn,
    roll_outdated,
    transfer_target,
)
from etcd_operator.planner.space import alarms, defragment
from etcd_operator.planner.steps import (
    AddLearner,
    ClusterState,
    CreatePod,
    Decision,
    DeletePod,
    InitialCluster,
    InSync,
    MoveLeader,
    PromoteLearner,
    Reason,
    RemoveMember,
    UpgradeMember,
    degraded,
    wait,
)
from etcd_operator.planner.tls_switch import (
    new_member_peer_url,
    restart_wrong_listeners,
    switch_peer_urls,
)
from etcd_operator.planner.view import View, rollout_allowed, start_failure
from etcd_operator.planner.volumes import (
    claim_for_new_member,
    claim_of,
    record_volumes,
    retire_removed,
)
from etcd_operator.versions import (
    VersionChange,
    parse_version,
    same_version,
    version_change,
)

UPGRADE_STALL_AFTER = timedelta(minutes=3)
"""A member replaced at a new version that is still not healthy this long after its pod was
created stops the rollout with `Degraded(UpgradeStalled)` (a missing image or a crash loop
does so at once)."""


def _join(v: View) -> InitialCluster:
    """Flags for a pod joining the current membership (etcd checks the peer URLs match)."""
    peers = tuple((v.label(m), url) for m in v.sorted_members() for url in m.peer_urls)
    ref = v.observed.cluster
    return InitialCluster(ClusterState.EXISTING, peers, cluster_token(ref.name, ref.uid))


def _create_pod(v: View, name: str, reason: Reason, message: str) -> Decision:
    """A pod for `name` on its claim. A member that has started must find its own log there
    (member-init checks); one that never started needs a claim holding no other log first."""
    same = v.members_named(name)
    member = same[0] if len(same) == 1 else None
    started = member is not None and member.started
    if not started:
        make_way = claim_for_new_member(v, name, member)
        if make_way is not None:
            return make_way
    step = CreatePod(
        name,
        _join(v),
        v.version_for_new_pod(),
        claim=claim_of(v.observed, name),
        member_id=member.id if member is not None and started else None,
    )
    return Decision(step, reason, message)


def decide_running(v: View) -> Decision:
    return (
        forced_start(v.observed)  # a --force-new-cluster pod must go before anyone joins
        or _while_quorum_lost(v)
        or _membership_anomalies(v)
        or _heal(v)
        or retire_removed(v)
        or record_volumes(v)
        or expand_volumes(v)
        or _learner_in_flight(v)
        or cancel_downgrade(v)
        or _stalled_upgrade(v, v.voters)
        or corrupt_alarm(v)  # etcd refuses writes: its member replaced, the alarm disarmed
        or _unhealthy(v)
        or replace_corrupt(v)
        or alarms(v)  # any alarm stops what follows; NOSPACE is recovered from
        or auth_change(v)
        or replace_requested(v)
        or _scale(v)
        or downgrade(v)
        or _upgrade(v)
        or roll_outdated(v)
        or restart_wrong_listeners(v)
        or switch_peer_urls(v)
        or grow_by_replacement(v)
        or expansion_refused(v)
        or replacement_refused(v)
        or defragment(v)  # maintenance: only when nothing else is to be done
        or Decision(InSync(), Reason.IN_SYNC, "all members healthy at the desired size")
    )


def _while_quorum_lost(v: View) -> Decision | None:
    """Without quorum nothing can be committed and nothing may be taken away. The one thing
    that can only help is starting a voter's missing pod on its intact volume: it rejoins as
    itself with its own data, exactly as if its process had restarted."""
    if v.has_quorum():
        return None
    if v.etcd_has_quorum():
        return wait(Reason.MEMBER_UNHEALTHY, "members serve, waiting for their pods to be ready")
    for m in v.voters:
        name = v.name_of(m)
        if name is None or name in v.observed.pods or len(v.members_named(name)) != 1:
            continue
        pvc = v.observed.pvcs.get(name)
        if pvc is not None and not pvc.deleting:
            return _create_pod(
                v, name, Reason.RESTORE_POD, f"restarting voter {name} to regain quorum"
            )
    for m in v.voters:
        # E.g. the only member of a one-member cluster upgraded to an image that cannot start,
        # and spec.version set back: the pod serves nothing, replacing it can only help.
        repair = _repair_failed_rollout(v, m)
        if repair is not None:
            return repair
    healthy, voters = v.healthy_voters(), len(v.voters)
    return degraded(
        Reason.QUORUM_LOST,
        f"{healthy} of {voters} voters healthy; quorum needs {voters // 2 + 1}",
    )


def _membership_anomalies(v: View) -> Decision | None:
    """Members that are not ours, or two members for one name (a crash between MemberAdd and
    recording it cannot cause this, but a human or a stale URL can)."""
    for m in v.sorted_members():
        if v.name_of(m) is not None:
            continue
        if m.is_learner:
            return Decision(
                RemoveMember(m.id, v.label(m)),
                Reason.REMOVE_STRAY_LEARNER,
                f"learner {v.label(m)} is not one of this cluster's members",
            )
        return degraded(
            Reason.FOREIGN_MEMBER,
            f"voter {v.label(m)} ({', '.join(m.peer_urls)}) is not one of this cluster's members;"
            " remove it by hand if it should not be there",
        )
    for name in by_ordinal(v.member_names):
        same = v.members_named(name)
        if len(same) < 2:
            continue
        spare = next((m for m in reversed(same) if m.is_learner and not m.started), None)
        if spare is None:
            spare = next((m for m in reversed(same) if m.is_learner), None)
        if spare is not None:
            return Decision(
                RemoveMember(spare.id, name),
                Reason.REMOVE_STRAY_LEARNER,
                f"{name} is in the member list {len(same)} times; removing learner {spare.id:x}",
            )
        return degraded(Reason.DUPLICATE_MEMBER, f"{name} is a voter {len(same)} times")
    return None


def _replace_lost(v: View, m: EtcdMember, why: str) -> Decision:
    """A member whose data is gone must never run under its old ID again: remove it, and the
    scale-out rules add it back as a new learner on a fresh volume."""
    name = v.label(m)
    if v.can_remove(m):
        return Decision(RemoveMember(m.id, name), Reason.REPLACE_LOST_MEMBER, f"{name}: {why}")
    return degraded(Reason.MEMBER_DATA_LOST, f"{name}: {why}; removing it now would lose quorum")


def _heal(v: View) -> Decision | None:
    pods, pvcs = v.observed.pods, v.observed.pvcs
    for m in v.sorted_members():
        name = v.name_of(m)
        assert name is not None  # anomalies handled first
        pod, pvc = pods.get(name), pvcs.get(name)
        if pod is None:
            if not m.started and m.is_learner:
                if pvc is not None and pvc.deleting:
                    return wait(Reason.VOLUME_TERMINATING, f"old volume of {name} is going")
                return _create_pod(v, name, Reason.START_LEARNER, f"starting learner {name}")
            if pvc is not None and not pvc.deleting:
                return _create_pod(
                    v,
                    name,
                    Reason.RESTORE_POD,
                    f"recreating pod of {name} (etcd {v.version_for_new_pod()}) on its volume",
                )
            return _replace_lost(v, m, "pod and volume are gone")
        if pod.data_lost and not v.answers(m):
            # A member that answers is running on its data, whatever an old init status says.
            return _replace_lost(v, m, "its data directory is empty or not its own")
    for name in by_ordinal(pods):
        stray = name in v.observed.expected_peer_urls and name not in v.member_names
        if stray and not pods[name].deleting:
            return Decision(DeletePod(name), Reason.DELETE_STRAY_POD, f"{name} is not a member")
    for m in v.sorted_members():
        pod = pods.get(v.name_of(m) or "")
        if pod is not None and pod.deleting:
            return wait(Reason.POD_TERMINATING, f"pod of {v.label(m)} is terminating")
    return None


def _learner_in_flight(v: View) -> Decision | None:
    for learner in v.learners:
        name = v.label(learner)
        if len(v.voters) >= v.observed.spec.replicas:
            return Decision(
                RemoveMember(learner.id, name),
                Reason.SCALE_IN,
                f"learner {name} is no longer needed at {v.observed.spec.replicas} replicas",
            )
        pvc = v.observed.pvcs.get(name)
        if v.can_promote(learner) and (pvc is None or pvc.member_id == learner.id):
            # Recorded first (record_volumes runs before this rule): once it votes, its log
            # must never be replaced by an empty one.
            return Decision(
                PromoteLearner(learner.id, name), Reason.PROMOTE, f"{name} has caught up"
            )
        stalled = _stalled_upgrade(v, [learner])  # e.g. an emptyDir member replaced by a rollout
        if stalled is not None:
            return stalled
        pod = v.observed.pods.get(name)
        if pod is not None and pod.crash_looping:
            return degraded(Reason.MEMBER_CRASH_LOOPING, f"learner {name} keeps crashing")
        return wait(Reason.LEARNER_CATCHING_UP, f"learner {name} is catching up")
    return None


def _unhealthy(v: View) -> Decision | None:
    for m in v.sorted_members():
        if v.healthy(m):
            continue
        name = v.label(m)
        pod = v.observed.pods.get(name)
        pvc = v.observed.pvcs.get(name)
        if pod is not None and pod.crash_looping:
            if not m.is_learner and len(v.voters) > v.observed.spec.replicas and v.can_remove(m):
                # Scaling in may take exactly the broken member when the rest keep quorum.
                return Decision(
                    RemoveMember(m.id, name),
                    Reason.SCALE_IN,
                    f"scaling in to {v.observed.spec.replicas}: removing {name}, which keeps"
                    " crashing",
                )
            return degraded(Reason.MEMBER_CRASH_LOOPING, f"{name} keeps crashing")
        if pod is not None and pod.phase is PodPhase.PENDING and pvc is not None and not pvc.bound:
            return wait(Reason.VOLUME_PENDING, f"volume of {name} is not bound yet")
        return wait(Reason.MEMBER_UNHEALTHY, f"{name} is not healthy yet")
    return None


def _scale(v: View) -> Decision | None:
    o = v.observed
    voters, replicas = v.voters, o.spec.replicas
    if len(voters) > replicas:
        target = voters[-1]
        name = v.label(target)
        if v.leader_id is None:
            return wait(Reason.NO_LEADER, "no leader to commit the removal")
        if target.id == v.leader_id:
            to = transfer_target(v, target, voters)
            if to is None:
                return wait(Reason.NO_TRANSFER_TARGET, f"no caught-up voter to lead after {name}")
            return Decision(
                MoveLeader(target.id, to.id, v.label(to)),
                Reason.TRANSFER_LEADERSHIP,
                f"moving leadership from {name} to {v.label(to)} before removing it",
            )
        if not v.can_remove(target):
            return wait(Reason.MEMBER_UNHEALTHY, f"removing {name} would lose quorum")
        return Decision(
            RemoveMember(target.id, name),
            Reason.SCALE_IN,
            f"scaling in from {len(voters)} to {replicas}: removing {name}",
        )
    if len(voters) < replicas:
        cluster = o.cluster.name
        name = next(
            n for n in (member_name(cluster, i) for i in range(replicas)) if n not in v.member_names
        )
        if name in o.pods:
            return wait(Reason.POD_TERMINATING, f"old pod {name} is terminating")
        pvc = o.pvcs.get(name)
        if pvc is not None and pvc.deleting:
            return wait(Reason.VOLUME_TERMINATING, f"old volume of {name} is going")
        make_way = claim_for_new_member(v, name, None)
        if make_way is not None:
            return make_way
        return Decision(
            AddLearner(name, new_member_peer_url(o, name)),
            Reason.SCALE_OUT,
            f"scaling out from {len(voters)} to {replicas}: adding {name} as a learner",
        )
    return None


def _in_settled_version(v: View, version: str) -> bool:
    return any(same_version(version, s) for s in v.settled_versions())


def repair_failed_rollout(
    o: Observed,
    name: str,
    member_id: int | None,
    settled: Iterable[str],
    reported: Iterable[str],
) -> Decision | None:
    """A member whose pod cannot run etcd at a version the cluster is not known to run well
    (`settled`) was moved there by a rollout that failed (e.g. an image that does not exist).
    Once `spec.version` names a version the member may move to, replace its pod: it serves
    nothing, so this costs no availability and is allowed even without quorum (`member_id` is
    None when no member answers, e.g. a one-member cluster); it is how a user rolls a broken
    member back."""
    pod = o.pods.get(name)
    if pod is None or pod.version is None:
        return None
    why = start_failure(pod)
    desired = o.spec.version
    if why is None or same_version(pod.version, desired):
        return None
    if any(same_version(pod.version, s) for s in settled):
        return None
    if not rollout_allowed(o, pod.version, desired, reported):
        return None
    return Decision(
        # It serves nothing: deleted directly, whatever the disruption budget would say.
        UpgradeMember(name, member_id, pod.version, desired, evict=False),
        Reason.UPGRADE,
        f"{name} cannot run etcd {pod.version} ({why}); replacing its pod with {desired}",
    )


def _repair_failed_rollout(v: View, m: EtcdMember) -> Decision | None:
    name = v.name_of(m)
    if name is None:
        return None
    return repair_failed_rollout(
        v.observed, name, m.id, v.settled_versions(), v.reported_versions()
    )


def _stalled_upgrade(v: View, members: list[EtcdMember]) -> Decision | None:
    """A member that does not become healthy at a new version stops the rollout: no other
    member is touched (the rules after this one require every member healthy), and the
    condition says which member, which version and how to get back."""
    now = v.observed.now
    for m in members:
        name = v.name_of(m)
        pod = v.observed.pods.get(name) if name is not None else None
        if v.healthy(m) or name is None or pod is None or pod.version is None or pod.deleting:
            continue
        repair = _repair_failed_rollout(v, m)
        if repair is not None:
            return repair
        if _in_settled_version(v, pod.version):
            continue  # not about a version change: the rules for unhealthy members decide
        why = start_failure(pod)
        age = now - pod.created_at if now is not None and pod.created_at is not None else None
        if why is None and age is not None and age > UPGRADE_STALL_AFTER:
            why = f"not healthy {int(age.total_seconds() // 60)} minutes after its pod started"
        if why is None:
            continue
        others = sorted(v.settled_versions() - {pod.version})
        back = f" or set spec.version back to {others[-1]}" if others else ""
        return degraded(
            Reason.UPGRADE_STALLED,
            f"upgrade stalled: {name} cannot run etcd {pod.version} ({why}); no other member"
            f" will be touched until it is healthy. Fix the image{back} to roll {name} back",
        )
    return None


def _blocked_message(name: str, current: str, desired: str) -> str:
    cur, want = parse_version(current), parse_version(desired)
    change = version_change(current, desired)
    if change is VersionChange.MINOR_ROLLBACK:
        return (
            f"{name} runs {current}: etcd cannot go back to {desired} once every member runs"
            f" {current.rsplit('.', 1)[0]} (the cluster version has moved); set spec.version"
            f" back to {current}"
        )
    if cur is not None and want is not None and cur.major == want.major:
        if want.minor > cur.minor:
            return (
                f"{name} runs {current}: moving to {desired} would skip a minor version, which"
                f" etcd does not support; upgrade to {cur.major}.{cur.minor + 1}.x first"
            )
        return f"{name} runs {current}: etcd cannot downgrade more than one minor version"
    return (
        f"{name} runs {current}: moving to {desired} would change the major version or is"
        " not a version; etcd supports patch changes and one minor version up at a time"
    )


def _upgrade(v: View) -> Decision | None:
    """Rolling version change, one member at a time: every member healthy, no learner, all
    caught up (earlier rules and the check below); followers first from the highest ordinal,
    then leadership moves to an upgraded member and the old leader goes last."""
    desired = v.observed.spec.version
    stale = [
        (m, ver)
        for m in v.voters
        if (ver := v.running_version(m)) is not None and not same_version(ver, desired)
    ]
    if not stale:
        return None
    for m, ver in stale:
        if not v.rollout_allowed(ver, desired):
            return degraded(Reason.UPGRADE_BLOCKED, _blocked_message(v.label(m), ver, desired))
    return restart_in_turn(
        v,
        stale,
        desired,
        Reason.UPGRADE,
        lambda name, ver: f"upgrading {name} from {ver} to {desired}",
    )
