"""kopf wiring for EtcdCluster: one reconcile loop per cluster, woken by the events of the
resource itself (a new generation, a deletion), its pods and its claims.

Each round: observe -> planner.decide -> (unless paused) apply the Services and PDB that are
missing or differ, apply exactly one step, write status if it changed, post new Events.
State lives only in the world and in status, so the operator can be killed between any two
calls and the next round carries on from what it sees. The loop keeps in memory only what
makes rounds cheaper and quieter: the cluster's etcd client and its `Pace` (back-off, Events
already posted).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import kopf
from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Event, PersistentVolumeClaim, Pod
from lightkube.types import PatchType

from etcd_operator import leader, metrics, rbac
from etcd_operator.api import (
    GROUP,
    PLURAL,
    VERSION,
    CARotationStatus,
    EtcdCluster,
    InvalidSpecError,
    parse_cluster,
)
from etcd_operator.etcd import DowngradeRefused, EtcdError
from etcd_operator.handlers.access import etcd_access
from etcd_operator.handlers.apply import ForeignClaim, StepNotReady, apply_step
from etcd_operator.handlers.auth import RootSecretUnavailable
from etcd_operator.handlers.certificates import (
    CertificatesRound,
    ensure_certificates,
    member_trust,
    wake_by,
)
from etcd_operator.handlers.downgrade import refused as downgrade_refused
from etcd_operator.handlers.objects import sync_cluster_objects
from etcd_operator.handlers.observe import EtcdSession, World, observe
from etcd_operator.handlers.recovery import RECORD_FIELD
from etcd_operator.handlers.rollback import next_rollback_status, seen_revision
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.handlers.space import next_defrag
from etcd_operator.health import WatchFreshness
from etcd_operator.kube import EtcdClusterResource, new_client
from etcd_operator.logs import for_cluster
from etcd_operator.naming import (
    CLUSTER_DOMAIN_ENV,
    DEFAULT_CLUSTER_DOMAIN,
    POD_NAMESPACE_ENV,
    valid_cluster_domain,
)
from etcd_operator.pacing import PAUSED, Outcome, Pace, after_round, backoff
from etcd_operator.planner import (
    Decision,
    Observed,
    Paused,
    Reason,
    decide,
    diverged_members,
    pdb_voters,
)
from etcd_operator.planner.recovery import lost_for_good
from etcd_operator.resources.labels import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    REPLACE_MEMBER_ANNOTATION,
    ROTATE_CA_ANNOTATION,
    member_selector,
)
from etcd_operator.scope import NAMESPACES_ENV, parse_namespaces
from etcd_operator.serving import (
    DEFAULT_STALL_AFTER,
    HEALTH_PORT_ENV,
    METRICS_PORT_ENV,
    STALL_AFTER_ENV,
    Probes,
    health_app,
    metrics_app,
    start_site,
    watch_lists,
)
from etcd_operator.status import next_status, round_of

FINALIZER = "etcd.operator.io/finalizer"
# The cluster's TLS Secrets cannot be used (missing, invalid, not the cluster's): the shell
# reports it and changes nothing else until it is fixed.
TLS_SECRET_INVALID = "TLSSecretInvalid"
CERTIFICATE_ISSUED = "CertificateIssued"
CA_ROTATION = "CARotation"

# What kopf itself does for the handlers below.
rbac.needs(EtcdClusterResource, "list", "watch", why="kopf: a daemon per cluster, deletions")
rbac.needs(EtcdClusterResource, "patch", why="kopf: its finalizer and bookkeeping annotations")
rbac.needs(Pod, "list", "watch", why="kopf: member pod events wake the cluster's loop")
rbac.needs(PersistentVolumeClaim, "watch", why="kopf: member claim events wake the loop")
rbac.needs(Event, "create", why="kopf.event / kopf.warn: one Event per step")
# Namespaced mode switches kopf's scanning off (see `configure`), so neither mode needs
# Namespaces and only the cluster-wide one follows CRDs.
rbac.needs(
    CustomResourceDefinition,
    "list",
    "watch",
    why="kopf (cluster-wide install): notices CRD changes without a restart",
    cluster_wide_only=True,
)
# What the handlers do.
rbac.needs(EtcdClusterResource, "get", why="each round reads the resource afresh")
rbac.needs(EtcdClusterResource.Status, "patch", why="each round's status, invalid specs")
rbac.needs(
    PersistentVolumeClaim, "list", "delete", why="deletion: claims follow whenDeleted: Delete"
)

log = logging.getLogger(__name__)


_NOT_FOUND = 404


class ClusterGone(Exception):
    """The EtcdCluster is not there any more. Its loop ends: kopf stops a daemon when it sees
    the deletion, but one that missed it (a watch gap, a standby) would otherwise poll a
    404 forever."""


@dataclass
class ClusterLoop:
    """What the loop of one cluster keeps between rounds (memory only; losing it is safe)."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    etcd: EtcdSession = field(default_factory=EtcdSession)
    pace: Pace = field(default_factory=Pace)
    # The resource's generation as the last round read it: a newer one wakes the loop.
    generation: int | None = None
    # The rotate-ca annotation as the last round read it: a new value wakes the loop too.
    rotate_ca: str | None = None
    # The replace-member annotation as the last round read it: a new value wakes the loop too.
    replace_member: str | None = None


_loops: dict[tuple[str, str], ClusterLoop] = {}


def cluster_domain() -> str:
    """The Kubernetes cluster's DNS domain (`--cluster-domain`), checked at startup."""
    domain = os.environ.get(CLUSTER_DOMAIN_ENV) or DEFAULT_CLUSTER_DOMAIN
    if not valid_cluster_domain(domain):
        raise ValueError(f"{CLUSTER_DOMAIN_ENV}={domain!r} is not a DNS domain")
    return domain


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # Keep kopf's bookkeeping in annotations: our status schema has no room for it.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    # Events are posted deliberately with kopf.event (one per step), not per log line.
    settings.posting.level = logging.WARNING
    # One line per HTTP request drowns what the operator decided.
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    if os.environ.get(NAMESPACES_ENV):
        # Namespaced install: the watched namespaces are exact names, so kopf need not list
        # Namespaces, and it finds the CRD by discovery at startup; no cluster-wide watch.
        settings.scanning.disabled = True
    memo.cluster_domain = cluster_domain()
    memo.kube = new_client()
    await _start_ha(memo)


async def _start_ha(memo: kopf.Memo) -> None:
    """Leader election, the watch-freshness check and the HTTP endpoints (from the env)."""
    memo.tasks = []
    memo.runners = []
    elector: leader.LeaderElector | None = None
    if leader.enabled():
        name, namespace = leader.lease_location(os.environ.get(POD_NAMESPACE_ENV))
        elector = leader.LeaderElector(
            memo.kube,
            name=name,
            namespace=namespace,
            identity=leader.default_identity(),
            timing=leader.timing_from_env(),
            on_change=metrics.set_leader,
        )
        memo.leader = elector
        memo.tasks.append(asyncio.create_task(elector.run()))
        log.info("leader election on: Lease %s/%s as %s", namespace, name, elector.identity)
    else:
        memo.leader = leader.AlwaysLeader()
        metrics.set_leader(True)
    stall_after = float(os.environ.get(STALL_AFTER_ENV) or DEFAULT_STALL_AFTER)
    memo.freshness = WatchFreshness(stall_after=stall_after, started=time.monotonic())
    if port := int(os.environ.get(HEALTH_PORT_ENV) or 0):
        namespaces = parse_namespaces([os.environ.get(NAMESPACES_ENV, "")])
        memo.tasks.append(
            asyncio.create_task(
                watch_lists(memo.kube, memo.freshness, namespaces, period=stall_after / 4)
            )
        )

        def lease_age() -> float | None:
            if elector is None:
                return None
            seen = elector.last_contact
            return time.monotonic() - (seen if seen is not None else memo.freshness.started)

        probes = Probes(
            freshness=memo.freshness,
            is_leader=memo.leader.is_leader,
            lease_age=lease_age,
            lease_limit=(elector.timing.lease_duration * 2) if elector else 0.0,
        )
        memo.runners.append(await start_site(health_app(probes), port))
    if port := int(os.environ.get(METRICS_PORT_ENV) or 0):
        memo.runners.append(await start_site(metrics_app(), port))


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    for task in getattr(memo, "tasks", []):
        task.cancel()
    elector = getattr(memo, "leader", None)
    if isinstance(elector, leader.LeaderElector):
        await elector.release()  # a standby takes over now, not a lease duration later
    for runner in getattr(memo, "runners", []):
        await runner.cleanup()
    kube: AsyncClient | None = getattr(memo, "kube", None)
    if kube is not None:
        await kube.close()


@kopf.on.event("", "v1", "pods", labels={MANAGED_BY_LABEL: MANAGED_BY})
@kopf.on.event("", "v1", "persistentvolumeclaims", labels={MANAGED_BY_LABEL: MANAGED_BY})
async def member_object_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    instance = body.get("metadata", {}).get("labels", {}).get(INSTANCE_LABEL)
    loop = _loops.get((namespace or "default", instance or ""))
    if loop is not None:
        loop.wake.set()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def cluster_changed(
    body: kopf.Body,
    name: str,
    namespace: str | None,
    memo: kopf.Memo | None = None,
    type: str | None = None,
    **_: Any,
) -> None:
    """A spec change or a deletion is acted on now, not at the next interval. Status writes
    (the loop's own) leave the generation alone and wake nothing."""
    loop = _loops.get((namespace or "default", name))
    meta = body.get("metadata", {})
    rotate_ca = (meta.get("annotations") or {}).get(ROTATE_CA_ANNOTATION)
    replace_member = (meta.get("annotations") or {}).get(REPLACE_MEMBER_ANNOTATION)
    freshness: WatchFreshness | None = getattr(memo, "freshness", None)
    if freshness is not None:
        key = (namespace or "default", name)
        freshness.event(key, meta.get("resourceVersion"), deleted=type == "DELETED")
    if loop is not None and (
        meta.get("deletionTimestamp")
        or meta.get("generation") != loop.generation
        or rotate_ca != loop.rotate_ca
        or replace_member != loop.replace_member
    ):
        loop.wake.set()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def reconcile_forever(
    stopped: kopf.DaemonStopped, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    namespace = namespace or "default"
    key = (namespace, name)
    loop = _loops.setdefault(key, ClusterLoop())
    fence: Fence = memo.leader
    try:
        while not stopped:
            loop.wake.clear()
            if not fence.is_leader():
                # A standby observes nothing and writes nothing; it looks again soon.
                await _standby(fence, stopped)
                continue
            try:
                delay = await reconcile_once(
                    memo.kube,
                    loop,
                    namespace,
                    name,
                    cluster_domain=memo.cluster_domain,
                    fence=fence.is_leader,
                )
            except asyncio.CancelledError:
                raise
            except ClusterGone:
                for_cluster(log, namespace, name).info("the cluster is gone; its loop ends")
                return
            except Exception:
                # The loop must outlive any single bad round (API hiccup, bug): log, retry.
                for_cluster(log, namespace, name).exception("reconcile failed")
                metrics.record_error(namespace, name)
                loop.pace = replace(loop.pace, failures=loop.pace.failures + 1)
                delay = backoff(loop.pace.failures)
            await _sleep(loop.wake, stopped, delay)
    finally:
        _loops.pop(key, None)
        metrics.forget_cluster(namespace, name)
        await loop.etcd.close()


class Fence(Protocol):
    def is_leader(self) -> bool: ...


async def _standby(fence: Fence, stopped: kopf.DaemonStopped) -> None:
    wake, period = asyncio.Event(), 1.0
    if isinstance(fence, leader.LeaderElector):
        period = fence.timing.retry_period
        # Woken when this replica gains the Lease; the event may still be set for a moment
        # after the Lease ran out (until the elector notices), and must not spin the loop.
        if not fence.became_leader.is_set():
            wake = fence.became_leader
    await _sleep(wake, stopped, period)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def cluster_deleted(
    body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Pods and services go with their owner; claims follow `pvcRetentionPolicy.whenDeleted`."""
    if not memo.leader.is_leader():
        # kopf runs this on every replica; only the leader acts (kopf retries the others).
        raise kopf.TemporaryError("not the leader", delay=5.0)
    try:
        cluster = parse_cluster(dict(body))
    except InvalidSpecError:
        return
    if cluster.spec.pvc_retention_policy.when_deleted == "Delete":
        kube: AsyncClient = memo.kube
        selector: LabelSelector = dict(member_selector(cluster))
        async for pvc in kube.list(PersistentVolumeClaim, namespace=namespace, labels=selector):
            if pvc.metadata and pvc.metadata.name:
                await kube.delete(PersistentVolumeClaim, pvc.metadata.name, namespace=namespace)
    kopf.event(
        body,
        type="Normal",
        reason="Deleted",
        message=f"cluster {name} deleted; claims: {cluster.spec.pvc_retention_policy.when_deleted}",
    )


async def reconcile_once(
    kube: AsyncClient,
    loop: ClusterLoop,
    namespace: str,
    name: str,
    *,
    cluster_domain: str,
    fence: Callable[[], bool] = lambda: True,
) -> float:
    """One round for one cluster; returns the seconds until the next round is due.
    `fence`: whether this replica may still act (leader election); checked right before
    the step is applied."""
    started = time.monotonic()
    clog = for_cluster(log, namespace, name)
    try:
        raw = await kube.get(EtcdClusterResource, name, namespace=namespace)
    except ApiError as e:
        if e.status.code == _NOT_FOUND:
            raise ClusterGone(f"{namespace}/{name}") from e
        raise
    body: dict[str, Any] = raw.to_dict()  # type: ignore[no-untyped-call]
    loop.generation = body["metadata"].get("generation")
    loop.rotate_ca = (body["metadata"].get("annotations") or {}).get(ROTATE_CA_ANNOTATION)
    loop.replace_member = (body["metadata"].get("annotations") or {}).get(REPLACE_MEMBER_ANNOTATION)
    try:
        cluster = parse_cluster(body)
    except InvalidSpecError as e:
        await _report_invalid_spec(kube, body, e)
        return PAUSED
    deleting = bool(body["metadata"].get("deletionTimestamp"))
    secrets = SecretReader(kube, namespace)
    access = await etcd_access(secrets, cluster)
    world = await observe(
        kube,
        cluster,
        deleting=deleting,
        etcd=loop.etcd,
        domain=cluster_domain,
        access=access,
        trust=await member_trust(secrets, cluster),
    )
    decision = decide(world.observed)
    step_kind = type(decision.step).__name__
    if not fence():
        # The Lease was lost while observing: write nothing (Events included).
        clog.warning("not the leader any more; %s not applied", step_kind)
        return 0.0
    if isinstance(decision.step, Paused):
        # Paused means nothing is written: no object, no status; one Event per pause.
        return _paced(loop, body, Outcome(decision))
    certificates = CertificatesRound()
    if not deleting:
        now = datetime.now(UTC)
        try:
            certificates = await ensure_certificates(
                kube,
                secrets,
                cluster,
                domain=cluster_domain,
                now=now,
                pods=world.pods,
                access=access,
            )
        except ApiError as e:
            certificates = CertificatesRound(problem=f"writing the TLS Secrets: {e}")
        for written in certificates.written:
            kopf.event(
                kopf.Body(cast(kopf.RawBody, body)),
                type="Normal",
                reason=CERTIFICATE_ISSUED,
                message=f"Secret {written}",
            )
        if certificates.problem is not None:
            await _report_tls_problem(kube, body, certificates.problem)
            loop.pace = replace(loop.pace, failures=loop.pace.failures + 1)
            return backoff(loop.pace.failures)
    objects_error = None
    if not deleting:
        voters = pdb_voters(world.observed)
        objects_error = await sync_cluster_objects(kube, cluster, voters)
    error: str | None = None
    not_ready = False
    if not fence():
        # The Lease was lost during the round (after Secrets and Services): no step.
        clog.warning("not the leader any more; %s not applied", step_kind)
        return 0.0
    clog.debug("applying %s", step_kind)
    try:
        # Pods made now mount the Secrets as this round left them.
        trust = await member_trust(secrets, cluster)
        await apply_step(
            kube, cluster, world, decision.step, cluster_domain=cluster_domain, trust=trust
        )
    except StepNotReady:
        not_ready = True
    except DowngradeRefused as e:
        decision = downgrade_refused(decision, e)  # etcd's own reason, as Degraded
    except (EtcdError, ApiError, ForeignClaim, RootSecretUnavailable) as e:
        error = str(e)
    clog.info("%s (%s)", decision.reason.value, decision.message)
    await _write_status(
        kube,
        cluster,
        world,
        decision,
        error=error,
        objects_error=objects_error,
        domain=cluster_domain,
        rotation=_rotation_status(body, certificates),
    )
    metrics.record_round(
        namespace,
        name,
        _figures(cluster, world),
        step=step_kind,
        seconds=time.monotonic() - started,
        error=error is not None,
    )
    outcome = Outcome(
        decision,
        error=error,
        objects_error=objects_error,
        newly_degraded=_newly_degraded(cluster, decision),
        not_ready=not_ready,
    )
    now = datetime.now(UTC)
    delay = wake_by(certificates.renew_at, now, _paced(loop, body, outcome))
    return wake_by(next_defrag(cluster, now), now, delay)  # a cron schedule's next time


def _rotation_status(
    body: dict[str, Any], certificates: CertificatesRound
) -> CARotationStatus | None:
    """status.caRotation from this round's rotation decision, with an Event when its phase
    changes (None: no decision this round, the previous status stays)."""
    rotation = certificates.rotation
    if rotation is None or certificates.ca_not_after is None:
        return None
    before = ((body.get("status") or {}).get("caRotation")) or {}
    phase = rotation.phase.value
    if phase != before.get("phase", "Idle"):
        kopf.event(
            kopf.Body(cast(kopf.RawBody, body)),
            type="Normal",
            reason=CA_ROTATION,
            message=f"{phase}: {rotation.message}",
        )
    return CARotationStatus(
        phase=phase,
        message=rotation.message,
        handled_request=certificates.handled_request,
        ca_not_after=certificates.ca_not_after,
    )


def _figures(cluster: EtcdCluster, world: World) -> metrics.ClusterFigures:
    observed = world.observed
    statuses = [h.status for h in world.health.values() if h.status is not None]
    members = observed.members
    # Ready: its pod is ready and its endpoint answered healthy.
    ready = sum(
        1
        for m in members or ()
        if (h := observed.member_health.get(m.id)) is not None
        and h.healthy
        and (pod := observed.pods.get(m.name)) is not None
        and pod.ready
    )
    return metrics.ClusterFigures(
        desired=observed.spec.replicas,
        ready=ready,
        voting=None if members is None else sum(1 for m in members if not m.is_learner),
        learners=None if members is None else sum(1 for m in members if m.is_learner),
        leader_id=observed.leader_id,
        db_size=metrics.max_or_none(s.db_size for s in statuses),
        db_in_use=metrics.max_or_none(s.db_size_in_use for s in statuses),
        quota=cluster.spec.etcd.quota_backend_bytes or metrics.DEFAULT_QUOTA_BYTES,
        diverged=_diverged(observed),
    )


def _diverged(observed: Observed) -> int | None:
    """How many voters the corruption check of this round found diverged (None: no check)."""
    if not observed.kv_hashes:
        return None
    voters = sum(1 for m in observed.members or () if not m.is_learner)
    return len(diverged_members(observed.kv_hashes, voters) or ())


def _paced(loop: ClusterLoop, body: dict[str, Any], outcome: Outcome) -> float:
    """Post the round's new Events; the delay until the next round."""
    loop.pace, notes, delay = after_round(loop.pace, outcome)
    target = kopf.Body(cast(kopf.RawBody, body))
    for note in notes:
        kopf.event(target, type=note.type.value, reason=note.reason, message=note.message)
    return delay


def _newly_degraded(cluster: EtcdCluster, decision: Decision) -> bool:
    conditions = (cluster.status.conditions or []) if cluster.status else []
    before = next((c for c in conditions if c.type == "Degraded"), None)
    if before is None or before.status != "True" or before.reason != decision.reason.value:
        return True
    # "No member answers" first (pods starting), then the verdict: that is news of its own.
    return lost_for_good(decision.message) and not lost_for_good(before.message or "")


async def _write_status(
    kube: AsyncClient,
    cluster: EtcdCluster,
    world: World,
    decision: Decision,
    *,
    error: str | None,
    objects_error: str | None,
    domain: str,
    rotation: CARotationStatus | None = None,
) -> None:
    members = world.cluster_members
    cluster_id = members.cluster_id if members else None
    round_ = round_of(
        world.observed,
        decision,
        cluster_id=cluster_id,
        error=error,
        objects_error=objects_error,
        cluster_domain=domain,
        tls=cluster.spec.tls.member_tls(),
    )
    new = next_status(round_, cluster.status, datetime.now(UTC))
    previous_rotation = cluster.status.ca_rotation if cluster.status else None
    new = new.model_copy(update={"ca_rotation": rotation or previous_rotation})
    previous_rollback = cluster.status.rollback if cluster.status else None
    rollback = next_rollback_status(
        decision,
        previous_rollback,
        world.rollback,
        cluster_id=cluster.status.cluster_id if cluster.status else None,
        now=datetime.now(UTC),
    )
    last_seen = cluster.status.last_seen_revision if cluster.status else None
    new = new.model_copy(update={"rollback": rollback, "last_seen_revision": last_seen})
    payload = new.model_dump(mode="json", by_alias=True)
    previous = cluster.status.model_dump(mode="json", by_alias=True) if cluster.status else None
    # Only its steps write the rebuild record (this round's step may just have).
    for written in (payload, previous or {}):
        written.pop(RECORD_FIELD, None)
    if payload == previous:
        return  # an unchanged status is not worth a write (and a watch event per watcher)
    # Written anyway: the revision served now rides along (never a write of its own).
    new = new.model_copy(update={"last_seen_revision": seen_revision(world.observed, last_seen)})
    payload = new.model_dump(mode="json", by_alias=True)
    payload.pop(RECORD_FIELD, None)  # a null here would erase the record a step just wrote
    await kube.patch(
        EtcdClusterResource.Status,
        cluster.name,
        {"status": payload},
        namespace=cluster.namespace,
        patch_type=PatchType.MERGE,
    )


async def _report_invalid_spec(
    kube: AsyncClient, body: dict[str, Any], e: InvalidSpecError
) -> None:
    message = str(e)[:32768]
    reported = ((body.get("status") or {}).get("conditions")) or []
    if any(
        c.get("type") == "Degraded"
        and c.get("reason") == Reason.INVALID_SPEC.value
        and c.get("message") == message
        for c in reported
    ):
        return  # status already says so: no second Warning, no rewrite
    kopf.warn(
        kopf.Body(cast(kopf.RawBody, body)), reason=Reason.INVALID_SPEC.value, message=message
    )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    condition = {
        "type": "Degraded",
        "status": "True",
        "reason": Reason.INVALID_SPEC.value,
        "message": message,
        "observedGeneration": body["metadata"].get("generation"),
        "lastTransitionTime": now,
    }
    await kube.patch(
        EtcdClusterResource.Status,
        body["metadata"]["name"],
        {"status": {"phase": "Failed", "conditions": [condition]}},
        namespace=body["metadata"]["namespace"],
        patch_type=PatchType.MERGE,
    )


async def _report_tls_problem(kube: AsyncClient, body: dict[str, Any], message: str) -> None:
    """Degraded=True TLSSecretInvalid (the other conditions and the phase stay) and one Warning
    per distinct message."""
    reported = list((body.get("status") or {}).get("conditions") or [])
    if any(
        c.get("type") == "Degraded"
        and c.get("reason") == TLS_SECRET_INVALID
        and c.get("message") == message
        for c in reported
    ):
        return
    kopf.warn(kopf.Body(cast(kopf.RawBody, body)), reason=TLS_SECRET_INVALID, message=message)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    condition = {
        "type": "Degraded",
        "status": "True",
        "reason": TLS_SECRET_INVALID,
        "message": message[:32768],
        "observedGeneration": body["metadata"].get("generation"),
        "lastTransitionTime": now,
    }
    conditions = [c for c in reported if c.get("type") != "Degraded"] + [condition]
    await kube.patch(
        EtcdClusterResource.Status,
        body["metadata"]["name"],
        {"status": {"conditions": conditions}},
        namespace=body["metadata"]["namespace"],
        patch_type=PatchType.MERGE,
    )


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
