"""`decide(observed)`: the one entry point. Bootstrap and the no-answer case live here; the
rules for a running cluster live in `running.py`."""

from __future__ import annotations

from etcd_operator.naming import (
    MAX_REPLICAS,
    by_ordinal,
    cluster_token,
    member_name,
    member_names,
    ordinal_of,
)
from etcd_operator.planner.auth import auth_unusable
from etcd_operator.planner.model import Observed
from etcd_operator.planner.recovery import forced_start, quorum_lost_for_good
from etcd_operator.planner.rollback import decide_rollback
from etcd_operator.planner.running import decide_running, repair_failed_rollout
from etcd_operator.planner.steps import (
    Bootstrap,
    ClusterState,
    CreatePod,
    Decision,
    Degraded,
    Done,
    InitialCluster,
    MarkBootstrapped,
    Paused,
    Reason,
    Step,
    Wait,
)
from etcd_operator.planner.tls_switch import with_tls
from etcd_operator.planner.view import (
    View,
    version_for_new_pod,
)
from etcd_operator.planner.volumes import claim_of, foreign_volumes, formed, record_volumes


def pdb_voters(observed: Observed) -> int:
    """The voters whose quorum the PodDisruptionBudget protects: those in the member list now
    (more than `spec.replicas` during a scale-in), or `spec.replicas` when no member answered."""
    voters = sum(1 for m in observed.members or () if not m.is_learner)
    return max(voters or observed.spec.replicas, 1)


def next_step(observed: Observed) -> Step:
    """The next safe step for one EtcdCluster."""
    return decide(observed).step


def decide(observed: Observed) -> Decision:
    """The next safe step, with the reason and message for Events and `status.lastOperation`."""
    return with_tls(observed, _decide(observed))


def _decide(observed: Observed) -> Decision:
    spec = observed.spec
    if spec.deleting:
        return Decision(Done(), Reason.DELETING, "the cluster is being deleted")
    if spec.paused:
        return Decision(Paused(), Reason.PAUSED, "reconciliation is paused")
    invalid = _validate(observed) or auth_unusable(observed)
    if invalid is not None:
        return invalid
    # Before the formed/bootstrap split: a rollback bootstraps a formed cluster again.
    rollback = decide_rollback(
        observed, _bootstrap, lambda: _decide_cluster(observed), _decide_formed
    )
    return rollback if rollback is not None else _decide_cluster(observed)


def _decide_cluster(observed: Observed) -> Decision:
    if not formed(observed):
        return _bootstrap(observed)
    return _decide_formed(observed)


def _decide_formed(observed: Observed) -> Decision:
    if observed.members is None:
        return _no_answer(observed)
    return decide_running(View.of(observed, observed.members))


def _validate(o: Observed) -> Decision | None:
    if not 1 <= o.spec.replicas <= MAX_REPLICAS:
        return Decision(
            Degraded(Reason.INVALID_SPEC),
            Reason.INVALID_SPEC,
            f"replicas must be between 1 and {MAX_REPLICAS}, got {o.spec.replicas}",
        )
    names = member_names(o.cluster.name)
    missing = [n for n in names if n not in o.expected_peer_urls]
    strange = [n for n in o.expected_peer_urls if ordinal_of(n, o.cluster.name) is None]
    if missing or strange:
        return Decision(
            Degraded(Reason.INVALID_OBSERVATION),
            Reason.INVALID_OBSERVATION,
            f"expected_peer_urls lacks {missing} or has names not of this cluster {strange}",
        )
    return None


def _ours(o: Observed) -> list[str]:
    """Names of existing pods that belong to this cluster, by ordinal."""
    return by_ordinal(n for n in o.pods if n in o.expected_peer_urls)


def _initial(o: Observed, state: ClusterState, names: list[str], epoch: int = 0) -> InitialCluster:
    peers = tuple((n, o.expected_peer_urls[n]) for n in names)
    return InitialCluster(state, peers, cluster_token(o.cluster.name, o.cluster.uid, epoch))


def _bootstrap(
    o: Observed,
    *,
    epoch: int = 0,
    restore: bool | None = None,
    started: frozenset[str] = frozenset(),
) -> Decision:
    """Before the cluster ever formed: all initial members start together with a static
    initial cluster. A crash half way leaves some pods, which name the whole initial cluster.
    `epoch`, `restore`: an in-place rollback bootstraps again, from its snapshot; `started`:
    its members seen running, never created here (planner/restored.py)."""
    restore = o.spec.restore if restore is None else restore
    foreign = foreign_volumes(o)
    if foreign is not None:
        return foreign
    pods = _ours(o)
    lost = [n for n in pods if o.pods[n].data_lost and n not in started]
    if lost:
        return Decision(
            Degraded(Reason.STALE_VOLUME),
            Reason.STALE_VOLUME,
            f"volumes of {lost} hold data of another cluster; delete them to bootstrap afresh",
        )
    if o.members is not None:
        # The members formed a cluster and it answered: it exists from now on. The first record
        # of a member's log on its claim makes that durable (emptyDir members have no claim:
        # status alone records it). Initial members whose pods are still missing are started
        # by the rules for a running cluster.
        record = record_volumes(View.of(o, o.members))
        if record is not None:
            return record
        return Decision(MarkBootstrapped(), Reason.BOOTSTRAPPED, "the cluster has formed")
    sets = {o.pods[n].bootstrap_members for n in pods}
    if not pods:
        initial = [member_name(o.cluster.name, i) for i in range(o.spec.replicas)]
    elif len(sets) == 1 and () not in sets:
        initial = by_ordinal(next(iter(sets)))
    else:
        return Decision(
            Degraded(Reason.BOOTSTRAP_INCONSISTENT),
            Reason.BOOTSTRAP_INCONSISTENT,
            f"pods {pods} disagree on the initial cluster or do not record one",
        )
    if any(n not in o.expected_peer_urls for n in initial) or not set(pods) <= set(initial):
        return Decision(
            Degraded(Reason.BOOTSTRAP_INCONSISTENT),
            Reason.BOOTSTRAP_INCONSISTENT,
            f"initial cluster {initial} does not match pods {pods}",
        )
    cluster = _initial(o, ClusterState.NEW, initial, epoch)
    if not pods and not started:
        return Decision(
            Bootstrap(tuple(initial), cluster, o.spec.version, restore=restore),
            Reason.BOOTSTRAP,
            f"creating the initial {len(initial)} members",
        )
    missing = [n for n in initial if n not in o.pods and n not in started]
    if missing:
        return Decision(
            CreatePod(
                missing[0],
                cluster,
                o.spec.version,
                claim=claim_of(o, missing[0]),
                restore=restore,
            ),
            Reason.BOOTSTRAP_RESUME,
            f"creating initial member {missing[0]} left out by an interrupted bootstrap",
        )
    return Decision(
        Wait(Reason.BOOTSTRAPPING), Reason.BOOTSTRAPPING, "waiting for the members to form"
    )


def _no_answer(o: Observed) -> Decision:
    """No member answered: quorum is lost or every pod is gone. Never bootstrap again; only
    start pods on the current claims of members (never a retired or foreign one), each expecting
    the log recorded on it, which brings members back with their own data."""
    forcing = forced_start(o)  # before restarts: the survivor's pod is rebuilt with the flag
    if forcing is not None:
        return forcing
    pods = _ours(o)
    volumes = by_ordinal(n for n in o.pvcs if n in o.expected_peer_urls)
    intact = [n for n in volumes if not o.pvcs[n].deleting]
    restart = [n for n in intact if n not in o.pods]
    if restart:
        name = restart[0]
        running = (o.pods[n].version for n in pods)
        cluster = _initial(o, ClusterState.EXISTING, by_ordinal(set(intact) | set(pods)))
        step = CreatePod(
            name,
            cluster,
            version_for_new_pod(o, running),
            claim=claim_of(o, name),
            member_id=o.pvcs[name].member_id,
        )
        return Decision(
            step, Reason.RESTORE_POD, f"no member answers; starting {name} on its volume"
        )
    if not pods and not volumes:
        return Decision(
            Degraded(Reason.CLUSTER_LOST),
            Reason.CLUSTER_LOST,
            "every pod and volume is gone; the cluster will not be bootstrapped empty again",
        )
    if any(o.pods[n].deleting for n in pods):
        return Decision(
            Wait(Reason.POD_TERMINATING), Reason.POD_TERMINATING, "pods are terminating"
        )
    # No member answers, so only the version status recorded is known to run well.
    settled = [o.status_version] if o.status_version is not None else []
    for name in pods:
        repair = repair_failed_rollout(o, name, None, settled, ())
        if repair is not None:
            return repair
    return quorum_lost_for_good(o) or Decision(
        Degraded(Reason.QUORUM_LOST),
        Reason.QUORUM_LOST,
        f"no member answers; {len(pods)} pods exist",
    )
