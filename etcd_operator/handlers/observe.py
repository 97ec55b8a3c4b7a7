"""Observe one EtcdCluster: read pods, claims and etcd into the planner's `Observed`.

Reads only. Every etcd call is bounded by short timeouts so that a dead member costs one
dial timeout, never a hung reconcile loop. The etcd client is the cluster's `EtcdSession`'s,
kept across rounds and shared with apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
from lightkube.resources.storage_v1 import StorageClass

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.api.cluster_status import RecoveryPhase
from etcd_operator.api.quantity import parse_quantity
from etcd_operator.etcd import (
    AuthError,
    ClusterMembers,
    Credentials,
    EndpointHealth,
    EtcdClient,
    EtcdConfig,
    EtcdError,
)
from etcd_operator.handlers.access import EtcdAccess
from etcd_operator.handlers.auth import RootAccess, read_root
from etcd_operator.handlers.corruption import observe_hashes
from etcd_operator.handlers.rollback import RollbackSeen, observe_rollback
from etcd_operator.handlers.space import observe_space
from etcd_operator.memberinit import Verdict
from etcd_operator.naming import (
    PLAINTEXT,
    MemberTLS,
    client_url,
    initial_cluster,
    member_names,
    url_address,
)
from etcd_operator.planner import (
    AuthState,
    ClusterRef,
    DesiredSpec,
    EtcdMember,
    ForcedStart,
    LocalView,
    MemberHealth,
    Observed,
    PodPhase,
    PodState,
    PvcRetention,
    PvcState,
    ReplacementRecord,
    split_claims,
)
from etcd_operator.planner.model import RollbackState
from etcd_operator.resources.labels import (
    BOOTSTRAP_MEMBERS_ANNOTATION,
    CLUSTER_UID_LABEL,
    ETCD_VERSION_ANNOTATION,
    FORCE_NEW_CLUSTER_ANNOTATION,
    MEMBER_ID_ANNOTATION,
    MEMBER_LABEL,
    REPLACE_MEMBER_ANNOTATION,
    RETIRED_ANNOTATION,
    member_selector,
)
from etcd_operator.resources.pod import (
    ETCD_CONTAINER,
    MEMBER_INIT_CONTAINER,
    pod_outdated,
    served_tls,
    trust_outdated,
)
from etcd_operator.tls.rotation import Trust

rbac.needs(Pod, "list", why="observe: the cluster's member pods")
rbac.needs(PersistentVolumeClaim, "list", why="observe: the cluster's member claims")
rbac.needs(StorageClass, "get", why="observe: whether claims may grow (allowVolumeExpansion)")

_NOT_FOUND = 404
_DATA_REFUSED = {int(Verdict.DATA_LOST), int(Verdict.FOREIGN_DATA)}
# Waiting reasons of a container that cannot even be started, as a kubelet reports them.
_START_ERRORS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


@dataclass(frozen=True)
class World:
    """What one round saw: the planner's input plus the raw facts status reports."""

    observed: Observed
    pods: Mapping[str, Pod]
    cluster_members: ClusterMembers | None
    health: Mapping[int, EndpointHealth]
    # The client this round talked to etcd through (None: no member pod to reach it by).
    etcd: EtcdClient | None = None
    # An in-place rollback's request, backup and verification (handlers/rollback.py).
    rollback: RollbackSeen = field(default_factory=lambda: RollbackSeen(RollbackState()))


def etcd_config(endpoints: Sequence[str], credentials: Credentials | None = None) -> EtcdConfig:
    """A plaintext cluster's configuration (timeouts as every cluster's: `EtcdAccess`)."""
    return EtcdAccess(PLAINTEXT).config(endpoints, credentials)


class EtcdSession:
    """One etcd client per cluster, kept across rounds (its channels, which endpoint answered
    last, which member answers at which endpoint, so `member_remove` can avoid the member it
    removes) and shared by observe and apply within a round.

    The client is replaced when the set of member pods changes (a pod added, removed or
    recreated under the same name): its endpoints are those pods' client URLs, and a channel
    resolved to a pod's address must not outlive that pod (its address may go to another
    pod). It is replaced too when its configuration changes (a renewed client certificate).
    A channel that breaks in between is dropped and re-dialled by the client itself.
    """

    def __init__(self) -> None:
        self._client: EtcdClient | None = None
        self._pods: tuple[tuple[str, str], ...] = ()
        self._config: EtcdConfig | None = None

    async def client(
        self,
        endpoints: Sequence[str],
        pod_uids: Sequence[str],
        config: EtcdConfig | None = None,
    ) -> EtcdClient:
        """The client for these endpoints, one per member pod (with the pods' uids);
        `config`: how to connect, TLS and credentials included (default: plaintext). A new
        config (renewed certificates, root's credentials) replaces the client."""
        pods = tuple(zip(endpoints, pod_uids, strict=True))
        config = config or etcd_config(endpoints)
        if self._client is None or pods != self._pods or config != self._config:
            await self.close()
            self._client, self._pods, self._config = EtcdClient(config), pods, config
        return self._client

    async def close(self) -> None:
        client, self._client, self._pods, self._config = self._client, None, (), None
        if client is not None:
            await client.close()


def expected_peer_urls(cluster: EtcdCluster, domain: str) -> dict[str, str]:
    """The peer URL of every name the cluster may use: how members are matched to names."""
    names = member_names(cluster.name)
    tls = cluster.spec.tls.member_tls()
    return initial_cluster(cluster.name, cluster.namespace, names, domain, tls=tls)


async def observe(
    kube: AsyncClient,
    cluster: EtcdCluster,
    *,
    deleting: bool,
    etcd: EtcdSession,
    domain: str,
    access: EtcdAccess | None = None,
    trust: Trust | None = None,
) -> World:
    """`access`: how to reach etcd (default: plaintext); unusable, etcd is not asked.
    `trust`: the bundle member pods' TLS Secrets hold (a pod that started with another is
    outdated)."""
    access = access or EtcdAccess(cluster.spec.tls.member_tls())
    ns = cluster.namespace
    selector: LabelSelector = dict(member_selector(cluster))
    pods = {
        p.metadata.name: p
        async for p in kube.list(Pod, namespace=ns, labels=selector)
        if p.metadata and p.metadata.name
    }
    served = {name: served_tls(p) for name, p in pods.items()}
    access = _reachable(access, [tls for tls, _ in served.values()])
    raw_claims = [c async for c in kube.list(PersistentVolumeClaim, namespace=ns, labels=selector)]
    claims = [_claim(c, cluster.spec.storage.size) for c in raw_claims]
    current_claims, other_claims = split_claims(claims, cluster.metadata.uid)
    client: EtcdClient | None = None
    # Root's password is read while auth is wanted, or once etcd says it enforces auth (root is
    # needed to turn it off, and to see anything at all).
    root = await read_root(kube, cluster) if cluster.spec.auth.enabled else None
    seen = _EtcdView(None, {}, None, None)
    local: dict[str, LocalView] = {}
    if pods and access.usable:
        names = sorted(pods)
        tls = access.member_tls
        endpoints = [client_url(n, cluster.name, ns, domain, tls=tls) for n in names]
        uids = [(p.metadata.uid if (p := pods[n]).metadata else None) or "" for n in names]
        credentials = root.credentials if root else None
        client = await etcd.client(endpoints, uids, access.config(endpoints, credentials))
        seen = await _observe_etcd(client, cluster, domain, access)
        if seen.auth_enabled and root is None:
            root = await read_root(kube, cluster)
            if root.credentials is not None:
                config = access.config(endpoints, root.credentials)
                client = await etcd.client(endpoints, uids, config)
                seen = await _observe_etcd(client, cluster, domain, access)
        if seen.members is None:
            # With auth on, Status needs a user: the session's token (taken while a quorum
            # answered; a survivor keeps honouring it) or, with TLS, the client certificate.
            local = await _local_views(client, dict(zip(names, endpoints, strict=True)))
    members, health = seen.members, seen.health
    small = {p.claim for p in current_claims.values() if p.undersized}
    grow = next((c for c in raw_claims if c.metadata and c.metadata.name in small), None)
    status = cluster.status
    spec = cluster.spec
    rollback = await observe_rollback(kube, cluster, answered=members is not None)
    now = datetime.now(UTC)
    observed = Observed(
        cluster=ClusterRef(cluster.name, ns, cluster.metadata.uid),
        generation=cluster.metadata.generation or 0,
        spec=DesiredSpec(
            replicas=spec.replicas,
            version=spec.version,
            paused=spec.paused,
            deleting=deleting,
            pvc_when_scaled=PvcRetention(spec.pvc_retention_policy.when_scaled),
            empty_dir=spec.storage.empty_dir,
            restore=spec.bootstrap.restore is not None,
            peer_tls=spec.tls.peer.mode != "Disabled",
            client_tls=spec.tls.client.mode != "Disabled",
            client_plaintext=spec.tls.client.allow_plaintext,
            quorum_loss=spec.recovery.quorum_loss.value,
        ),
        bootstrapped=bool(status and status.cluster_id),
        members=(
            tuple(
                EtcdMember(m.id, m.name, m.peer_urls, m.client_urls, m.is_learner)
                for m in members.members
            )
            if members
            else None
        ),
        expected_peer_urls=expected_peer_urls(cluster, domain),
        member_health={mid: _health(h) for mid, h in health.items()},
        leader_id=next(
            (h.status.leader for h in health.values() if h.status and h.status.leader), None
        ),
        pods={
            name: _pod_state(
                p,
                outdated=pod_outdated(cluster, p, cluster_domain=domain)
                or trust_outdated(p, trust),
                served=served[name],
            )
            for name, p in pods.items()
        },
        pvcs=current_claims,
        status_version=status.current_version if status else None,
        now=now,
        other_claims=other_claims,
        volume_expansion=await _expansion_allowed(kube, grow) if grow is not None else None,
        auth=_auth_state(cluster, root, seen),
        rollback=rollback.state,
        space=await observe_space(client, cluster, health),
        local_views=local,
        forced_start=_forced_start(cluster),
        status_downgrade=status.downgrade_target if status else None,
        replace_request=(cluster.metadata.annotations or {}).get(REPLACE_MEMBER_ANNOTATION),
        replacement=_replacement(cluster),
        kv_hashes=await observe_hashes(client, cluster, members, health, now)
        if client is not None
        else {},
    )
    return World(observed, pods, members, health, client, rollback)


async def _local_views(etcd: EtcdClient, endpoints: Mapping[str, str]) -> dict[str, LocalView]:
    """No quorum answered: what each member pod's etcd knows alone (its member list from its
    log, its raft position), by pod name. A member that does not answer is left out."""

    async def ask(endpoint: str) -> LocalView | None:
        try:
            status = await etcd.status(endpoint)
            members = await etcd.local_member_list(endpoint)
        except EtcdError:
            return None
        return LocalView(
            member_id=status.member_id,
            members=tuple(
                EtcdMember(m.id, m.name, m.peer_urls, m.client_urls, m.is_learner)
                for m in members.members
            ),
            raft_term=status.raft_term,
            raft_index=status.raft_index,
            applied_index=status.raft_applied_index,
        )

    answers = await asyncio.gather(*(ask(e) for e in endpoints.values()))
    return {n: v for n, v in zip(endpoints, answers, strict=True) if v is not None}


def _forced_start(cluster: EtcdCluster) -> ForcedStart | None:
    """`status.quorumLossRecovery`, the durable record of a rebuild from a survivor."""
    record = cluster.status.quorum_loss_recovery if cluster.status else None
    if record is None:
        return None
    return ForcedStart(
        record.member, int(record.member_id, 16), done=record.phase == RecoveryPhase.RECOVERED
    )


@dataclass(frozen=True)
class _EtcdView:
    members: ClusterMembers | None
    health: dict[int, EndpointHealth]
    # etcd's record of whether it enforces auth (a refusal counts: only then does it refuse).
    auth_enabled: bool | None
    refused: str | None  # etcd's refusal of the client's credentials (or of none)


def _auth_state(cluster: EtcdCluster, root: RootAccess | None, seen: _EtcdView) -> AuthState:
    problem = root.problem if root is not None else None
    if root is not None and root.creatable and seen.auth_enabled is False:
        problem = None  # the EnableAuth step creates the generated Secret
    return AuthState(
        wanted=cluster.spec.auth.enabled,
        enabled=seen.auth_enabled,
        secret=root.secret if root is not None else "",
        secret_problem=problem,
        rejected=seen.refused if root is not None and root.credentials is not None else None,
    )


async def _observe_etcd(
    etcd: EtcdClient, cluster: EtcdCluster, domain: str, access: EtcdAccess
) -> _EtcdView:
    try:
        members = await etcd.member_list()
    except AuthError as e:
        return _EtcdView(None, {}, True, e.details)
    except EtcdError:
        return _EtcdView(None, {}, None, None)
    by_peer = {
        url_address(url): client_url(
            name, cluster.name, cluster.namespace, domain, tls=access.member_tls
        )
        for name, url in expected_peer_urls(cluster, domain).items()
    }
    scheme = access.member_tls.client_scheme
    targets: dict[int, str] = {}
    for m in members.members:
        # An unstarted learner publishes no client URL yet; ask it where it will listen.
        url = (
            m.client_urls[0]
            if m.client_urls
            else next((by_peer[a] for u in m.peer_urls if (a := url_address(u)) in by_peer), None)
        )
        if url is not None:
            # What it advertises may be the scheme it is switching to: ask as the client does.
            targets[m.id] = f"{scheme}://{url_address(url)}"
    results = await asyncio.gather(*(etcd.health(url) for url in targets.values()))
    health = dict(zip(targets, results, strict=True))
    for member_id, h in list(health.items()):
        if h.status is not None and h.status.member_id != member_id:
            # Its address led to another member (a stale or early resolution): that answer
            # says nothing about this member. Dialled afresh next round.
            await etcd.forget(h.endpoint)
            health[member_id] = EndpointHealth(
                h.endpoint, False, h.took, f"answered as member {h.status.member_id:x}", None
            )
    try:
        enabled: bool | None = (await etcd.auth_status()).enabled
    except AuthError:
        enabled = True
    except EtcdError:
        enabled = None
    return _EtcdView(members, health, enabled, None)


def _health(h: EndpointHealth) -> MemberHealth:
    s = h.status
    if s is None:
        return MemberHealth(reachable=False, healthy=False)
    return MemberHealth(
        reachable=True,
        healthy=h.healthy,
        version=s.version,
        raft_index=s.raft_index,
        applied_index=s.raft_applied_index,
        db_size=s.db_size,
        is_leader=s.is_leader,
        alarms=tuple(s.errors),
        revision=s.revision,
        storage_version=s.storage_version or None,
        downgrade_target=(s.downgrade_target or None) if s.downgrade_enabled else None,
        db_size_in_use=s.db_size_in_use,
    )


def _reachable(access: EtcdAccess, served: list[MemberTLS]) -> EtcdAccess:
    """`access`, or plaintext while some member pod does not serve TLS to clients yet (a
    cluster switching to TLS): every pod then still serves plaintext clients."""
    if not access.member_tls.client or all(tls.client for tls in served):
        return access
    return EtcdAccess(replace(access.member_tls, client=False, client_plaintext=False))


def _pod_state(
    pod: Pod, *, outdated: bool = False, served: tuple[MemberTLS, bool] = (PLAINTEXT, False)
) -> PodState:
    meta, status = pod.metadata, pod.status
    annotations = (meta.annotations if meta else None) or {}
    etcd = (
        next((c for c in (status.containerStatuses or []) if c.name == ETCD_CONTAINER), None)
        if status
        else None
    )
    init = (
        next(
            (c for c in (status.initContainerStatuses or []) if c.name == MEMBER_INIT_CONTAINER),
            None,
        )
        if status
        else None
    )
    # What member-init says now: refused while it exits (or waits to retry after exiting) with a
    # data verdict. Once it completed, an older refusal in lastState no longer counts.
    refused = False
    if init is not None and init.state is not None:
        last = init.lastState.terminated if init.lastState else None
        now = init.state.terminated
        if now is not None:
            refused = now.exitCode in _DATA_REFUSED
        elif init.state.waiting is not None and last is not None:
            refused = last.exitCode in _DATA_REFUSED
    waiting = etcd.state.waiting if etcd and etcd.state else None
    ready = any(
        c.type == "Ready" and c.status == "True"
        for c in ((status.conditions or []) if status else [])
    )
    bootstrap = annotations.get(BOOTSTRAP_MEMBERS_ANNOTATION, "")
    created: datetime | None = meta.creationTimestamp if meta else None
    return PodState(
        phase=_phase(status.phase if status else None),
        ready=ready,
        deleting=bool(meta and meta.deletionTimestamp),
        version=annotations.get(ETCD_VERSION_ANNOTATION),
        restart_count=etcd.restartCount if etcd else 0,
        crash_looping=bool(waiting and waiting.reason == "CrashLoopBackOff"),
        start_error=(waiting.reason if waiting and waiting.reason in _START_ERRORS else None),
        data_lost=refused,
        created_at=created,
        bootstrap_members=tuple(n for n in bootstrap.split(",") if n),
        outdated=outdated,
        tls=served[0],
        peer_tls=served[1],
        forced=annotations.get(FORCE_NEW_CLUSTER_ANNOTATION) == "true",
    )


def _phase(phase: str | None) -> PodPhase:
    try:
        return PodPhase(phase or PodPhase.PENDING)
    except ValueError:
        return PodPhase.UNKNOWN


def _claim(pvc: PersistentVolumeClaim, size: str | None = None) -> tuple[str, PvcState]:
    """(its member's name, what the claim is and what it records); `size`: what
    `spec.storage.size` asks for, to tell whether the claim should grow."""
    meta = pvc.metadata
    name = (meta.name if meta else None) or ""
    labels = (meta.labels if meta else None) or {}
    annotations = (meta.annotations if meta else None) or {}
    recorded = annotations.get(MEMBER_ID_ANNOTATION)
    try:
        member_id = int(recorded, 16) if recorded else None
    except ValueError:
        member_id = None  # not a record the operator wrote: no fact
    resources = pvc.spec.resources if pvc.spec else None
    requested = (resources.requests or {}).get("storage") if resources else None
    state = PvcState(
        bound=bool(pvc.status and pvc.status.phase == "Bound"),
        deleting=bool(meta and meta.deletionTimestamp),
        claim=name,
        cluster_uid=labels.get(CLUSTER_UID_LABEL),
        member_id=member_id,
        retired=annotations.get(RETIRED_ANNOTATION) == "true",
        undersized=requested is not None
        and size is not None
        and parse_quantity(requested) < parse_quantity(size),
    )
    return labels.get(MEMBER_LABEL, name), state


async def _expansion_allowed(kube: AsyncClient, pvc: PersistentVolumeClaim) -> bool:
    """Whether the claim's StorageClass lets it grow (all members' claims share the class).
    Read only while some member's claim is smaller than the spec asks, so a cluster at its
    size costs no extra call."""
    name = pvc.spec.storageClassName if pvc.spec else None
    if not name:
        return False  # bound statically, without a class: nothing can grow it
    try:
        storage_class = await kube.get(StorageClass, name)
    except ApiError as e:
        if e.status.code == _NOT_FOUND:
            return False
        raise
    return bool(storage_class.allowVolumeExpansion)


def _replacement(cluster: EtcdCluster) -> ReplacementRecord | None:
    """status.replacement, the record of the replace-member request acted on."""
    record = cluster.status.replacement if cluster.status else None
    if record is None:
        return None
    return ReplacementRecord(record.request, record.member, int(record.member_id, 16))
