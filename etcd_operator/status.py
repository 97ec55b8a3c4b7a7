"""What `EtcdCluster.status` should say after one reconcile round: a pure function.

Conditions follow the Kubernetes conventions: a condition's `lastTransitionTime`
changes only when its status flips, so `kubectl describe` shows how long the cluster
has been (un)available rather than when the operator last looked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from etcd_operator.api import (
    ClusterPhase,
    Condition,
    ConditionStatus,
    ConditionType,
    CorruptionCheckStatus,
    EtcdClusterStatus,
    LastOperation,
    MemberStatus,
    OperationState,
    ReplacementStatus,
)
from etcd_operator.api.common import next_condition
from etcd_operator.naming import (
    DEFAULT_CLUSTER_DOMAIN,
    PLAINTEXT,
    MemberTLS,
    client_endpoint,
    client_url,
    url_address,
)
from etcd_operator.pacing import OBJECT_APPLY_FAILED, STEP_FAILED
from etcd_operator.planner import (
    CancelDowngrade,
    Decision,
    Degraded,
    Done,
    EnableDowngrade,
    InSync,
    MarkBootstrapped,
    Observed,
    Paused,
    Reason,
    RecordReplacement,
    RecordVolume,
    acts,
    diverged_members,
    formed,
    quorum,
)
from etcd_operator.resources.labels import member_selector_of, selector_string
from etcd_operator.status_space import maintenance_status, refusing_writes
from etcd_operator.versions import parse_version, same_minor, version_key

_CREATING = {Reason.BOOTSTRAP, Reason.BOOTSTRAP_RESUME, Reason.BOOTSTRAPPING, Reason.BOOTSTRAPPED}
_SCALING = {
    Reason.SCALE_OUT,
    Reason.SCALE_IN,
    Reason.START_LEARNER,
    Reason.PROMOTE,
    Reason.LEARNER_CATCHING_UP,
    Reason.TRANSFER_LEADERSHIP,
    Reason.DELETE_SCALED_VOLUME,
}
_FAILED = {Reason.QUORUM_LOST, Reason.CLUSTER_LOST}


@dataclass(frozen=True)
class Round:
    """Everything one reconcile round knows that status reports."""

    observed: Observed
    decision: Decision
    members: Sequence[MemberStatus]
    ready_replicas: int
    cluster_id: str | None
    leader: str | None
    client_endpoint: str
    # The step was applied and failed: status says so instead of claiming progress.
    error: str | None = None
    # Applying a Service or the PodDisruptionBudget failed (the step still ran).
    objects_error: str | None = None


def round_of(
    observed: Observed,
    decision: Decision,
    *,
    cluster_id: int | None,
    error: str | None,
    objects_error: str | None = None,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    tls: MemberTLS = PLAINTEXT,
) -> Round:
    """The round as status reports it, from what the shell observed and decided.

    `status.clusterID` is the record that the cluster formed, so it is written only once that is
    a fact (a member's log recorded, or the bootstrap step saying so), never because some member
    answered a round that could not yet tell."""
    members, leader = member_rows(observed, cluster_domain, tls=tls)
    ref = observed.cluster
    if not (formed(observed) or isinstance(decision.step, MarkBootstrapped | RecordVolume)):
        cluster_id = None
    return Round(
        observed=observed,
        decision=decision,
        members=members,
        ready_replicas=sum(1 for p in observed.pods.values() if p.ready),
        cluster_id=f"{cluster_id:x}" if cluster_id is not None else None,
        leader=leader,
        # Relative to the cluster domain (`<svc>.<ns>.svc`): right whatever the domain is.
        client_endpoint=client_endpoint(ref.name, ref.namespace, tls=tls),
        error=error,
        objects_error=objects_error,
    )


def member_rows(
    o: Observed, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN, *, tls: MemberTLS = PLAINTEXT
) -> tuple[list[MemberStatus], str | None]:
    """`status.members`, one row per entry of the member list, and the leader's name."""
    names = {url_address(url): n for n, url in o.expected_peer_urls.items()}
    ref = o.cluster
    rows: list[MemberStatus] = []
    leader: str | None = None
    for m in o.members or ():
        addresses = (url_address(u) for u in m.peer_urls)
        name = next((names[a] for a in addresses if a in names), m.name or f"{m.id:x}")
        health = o.member_health.get(m.id)
        reachable = health is not None and health.reachable
        if health is not None and health.is_leader:
            leader = name
        rows.append(
            MemberStatus.model_validate(
                {
                    "name": name,
                    "id": f"{m.id:x}",
                    "peerURL": m.peer_urls[0] if m.peer_urls else None,
                    "clientURL": m.client_urls[0]
                    if m.client_urls
                    else client_url(name, ref.name, ref.namespace, cluster_domain, tls=tls),
                    "isLearner": m.is_learner,
                    "healthy": bool(health and health.healthy),
                    "version": health.version if health and reachable else None,
                    "dbSize": health.db_size if health and reachable else None,
                    "dbSizeInUse": health.db_size_in_use if health and reachable else None,
                }
            )
        )
    return rows, leader


def phase_of(
    decision: Decision, previous: ClusterPhase | None, *, upgrading: bool = False
) -> ClusterPhase:
    """`upgrading`: some member pod runs another version than spec.version or was built from
    an older spec, so every step until the rollout ends (leadership moves, pod restores,
    waits) is part of it."""
    reason = decision.reason
    match decision.step:
        case InSync():
            return ClusterPhase.RUNNING
        case Paused():
            return previous or ClusterPhase.PENDING
        case Done():
            return ClusterPhase.DELETING
        case Degraded():
            return ClusterPhase.FAILED if reason in _FAILED else ClusterPhase.DEGRADED
        case _:
            pass
    if reason in _CREATING:
        return ClusterPhase.CREATING
    rolling = reason in (Reason.UPGRADE, Reason.ROLLING_RESTART, Reason.REPLACE_MEMBER)
    if rolling or (upgrading and reason is not Reason.SCALE_OUT):
        return ClusterPhase.UPGRADING
    if reason in _SCALING:
        return ClusterPhase.SCALING
    return ClusterPhase.HEALING


def _available(r: Round) -> tuple[ConditionStatus, str, str]:
    members = r.observed.members
    if members is None:
        return ConditionStatus.FALSE, "NoMemberAnswered", "no etcd member answered"
    voters = [m for m in members if not m.is_learner]
    healthy = [m for m in voters if (h := r.observed.member_health.get(m.id)) and h.healthy]
    needed = quorum(len(voters))
    message = f"{len(healthy)} of {len(voters)} voting members healthy, quorum is {needed}"
    if voters and len(healthy) >= needed:
        return ConditionStatus.TRUE, "QuorumHealthy", message
    return ConditionStatus.FALSE, "QuorumLost", message


def _progressing(r: Round) -> tuple[ConditionStatus, str, str]:
    d = r.decision
    if r.error is not None:
        return ConditionStatus.TRUE, STEP_FAILED, f"{d.message}: {r.error}"
    match d.step:
        case InSync() | Paused() | Degraded() | Done():
            return ConditionStatus.FALSE, d.reason.value, d.message
        case _:
            return ConditionStatus.TRUE, d.reason.value, d.message


def _degraded(r: Round) -> tuple[ConditionStatus, str, str]:
    d = r.decision
    if isinstance(d.step, Degraded):
        return ConditionStatus.TRUE, d.reason.value, d.message
    desired = r.observed.spec.replicas
    no_space = refusing_writes(r.observed)
    if no_space is not None:
        return ConditionStatus.TRUE, no_space, f"{d.message} (etcd refuses writes meanwhile)"
    if r.objects_error is not None:
        return ConditionStatus.TRUE, OBJECT_APPLY_FAILED, r.objects_error
    if r.ready_replicas < desired and r.observed.bootstrapped:
        message = f"{r.ready_replicas} of {desired} members ready"
        return ConditionStatus.TRUE, "MembersNotReady", message
    return ConditionStatus.FALSE, "AsExpected", "all members ready"


def _condition(
    kind: ConditionType,
    value: tuple[ConditionStatus, str, str],
    previous: Mapping[str, Condition],
    generation: int,
    now: datetime,
) -> Condition:
    status, reason, message = value
    return next_condition(previous.values(), kind.value, status, reason, message, generation, now)


def _last_operation(
    r: Round, previous: LastOperation | None, now: datetime
) -> LastOperation | None:
    match r.decision.step:
        case InSync() if previous is not None and previous.state is OperationState.PROCESSING:
            return previous.model_copy(update={"state": OperationState.SUCCEEDED, "time": now})
        case step if not acts(step):
            return previous
        case step:
            state = OperationState.ERROR if r.error else OperationState.PROCESSING
            description = (r.decision.message + (f": {r.error}" if r.error else ""))[:1024]
            kind = type(step).__name__
            if previous is not None and (previous.type, previous.state, previous.description) == (
                kind,
                state,
                description,
            ):
                return previous  # the same operation again (a retry): it began back then
            return LastOperation(type=kind, state=state, description=description, time=now)


def next_status(r: Round, previous: EtcdClusterStatus | None, now: datetime) -> EtcdClusterStatus:
    prev_conditions = {c.type: c for c in (previous.conditions or [])} if previous else {}
    gen = r.observed.generation
    conditions = [
        _condition(ConditionType.AVAILABLE, _available(r), prev_conditions, gen, now),
        _condition(ConditionType.PROGRESSING, _progressing(r), prev_conditions, gen, now),
        _condition(ConditionType.DEGRADED, _degraded(r), prev_conditions, gen, now),
    ]
    current_version = _current_version(r, previous.current_version if previous else None)
    return EtcdClusterStatus(
        observed_generation=gen,
        phase=phase_of(
            r.decision, previous.phase if previous else None, upgrading=_upgrading(r.observed)
        ),
        conditions=conditions,
        replicas=len(r.members),
        ready_replicas=r.ready_replicas,
        selector=selector_string(member_selector_of(r.observed.cluster.name)),
        members=list(r.members),
        leader=r.leader,
        clusterID=r.cluster_id or (previous.cluster_id if previous else None),
        current_version=current_version,
        client_endpoint=r.client_endpoint,
        last_operation=_last_operation(r, previous.last_operation if previous else None, now),
        downgradeTarget=_downgrade_target(r, previous.downgrade_target if previous else None),
        replacement=_replacement(r, previous.replacement if previous else None),
        corruption_check=_corruption_check(r, previous.corruption_check if previous else None, now),
        maintenance=maintenance_status(
            r.observed, r.decision, r.error, previous.maintenance if previous else None, now
        ),
    )


def _corruption_check(
    r: Round, previous: CorruptionCheckStatus | None, now: datetime
) -> CorruptionCheckStatus | None:
    """status.corruptionCheck: the outcome of this round's comparison of HashKV, if one ran."""
    hashes = r.observed.kv_hashes
    if not hashes:
        return previous
    voters = [m for m in r.observed.members or () if not m.is_learner]
    names = {int(row.id, 16): row.name for row in r.members if row.id is not None}
    verdict = diverged_members(hashes, len(voters))
    revision = next(iter(hashes.values())).revision
    if verdict is None:
        listed = ", ".join(f"{names.get(i, f'{i:x}')}={h.hash:x}" for i, h in hashes.items())
        message = f"members disagree without a majority at revision {revision}: {listed}"
        diverged: list[str] = []
    else:
        diverged = [names.get(i, f"{i:x}") for i in verdict]
        message = (
            f"{', '.join(diverged)} diverged from the majority at revision {revision}"
            if diverged
            else f"all {len(hashes)} voters agree at revision {revision}"
        )
    return CorruptionCheckStatus(
        last_time=now, revision=revision, diverged=diverged, message=message[:1024]
    )


def _replacement(r: Round, previous: ReplacementStatus | None) -> ReplacementStatus | None:
    """status.replacement: written by the step that records a request, kept while the
    annotation asks for it, gone with the annotation (the same member may then be asked for
    again)."""
    step = r.decision.step
    if isinstance(step, RecordReplacement):
        return ReplacementStatus.model_validate(
            {"request": step.request, "member": step.member, "memberID": f"{step.member_id:x}"}
        )
    if r.observed.replace_request is None:
        return None
    return previous


def _upgrading(o: Observed) -> bool:
    """Some member pod runs another version than spec.version or an older spec: a rollout."""
    return any(
        (p.version is not None and p.version != o.spec.version) or p.outdated
        for name, p in o.pods.items()
        if name in o.expected_peer_urls
    )


def _current_version(r: Round, previous: str | None) -> str | None:
    """The version every member runs: the oldest any voter reports. While a voter does not
    answer (e.g. restarting mid-upgrade) the previous value stays, so the version flips only
    once every member answers with the new one."""
    voters = [m for m in r.members if not m.is_learner]
    versions = [m.version for m in voters if m.version]
    if not versions:
        return previous
    oldest = min(versions, key=version_key)
    if len(versions) < len(voters) and previous is not None:
        return min(oldest, previous, key=version_key)
    return oldest


def _downgrade_target(r: Round, previous: str | None) -> str | None:
    """status.downgradeTarget: written by the step that enables the downgrade, then etcd's own
    record while an etcd 3.6 member answers; with none answering it stays until every voter
    answers with the target's minor (etcd then ends the downgrade itself)."""
    step = r.decision.step
    if r.error is None and isinstance(step, EnableDowngrade):
        parsed = parse_version(step.version)
        return f"{parsed.major}.{parsed.minor}.0" if parsed is not None else step.version
    if r.error is None and isinstance(step, CancelDowngrade):
        return None
    health = r.observed.member_health.values()
    reports = [h for h in health if h.reachable and h.storage_version]
    if reports:
        return next((h.downgrade_target for h in reports if h.downgrade_target), None)
    voters = [m for m in r.members if not m.is_learner]
    if (
        previous is not None
        and voters
        and all(m.version is not None and same_minor(m.version, previous) for m in voters)
    ):
        return None
    return previous
