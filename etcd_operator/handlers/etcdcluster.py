"""kopf wiring for EtcdCluster: one reconcile loop per cluster, woken by its pods' events.

Each round: observe -> planner.decide -> apply exactly one step -> write status. State
lives only in the world and in status, so the operator can be killed between any two
calls and the next round carries on from what it sees.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Event, Namespace, PersistentVolumeClaim, Pod
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import (
    GROUP,
    PLURAL,
    VERSION,
    EtcdCluster,
    InvalidSpecError,
    parse_cluster,
)
from etcd_operator.etcd import EtcdError
from etcd_operator.handlers.apply import (
    ForeignClaim,
    StepNotReady,
    apply_step,
    ensure_cluster_objects,
)
from etcd_operator.handlers.observe import World, observe
from etcd_operator.kube import EtcdClusterResource, new_client
from etcd_operator.planner import (
    Decision,
    Degraded,
    Done,
    InSync,
    Paused,
    Reason,
    Wait,
    acts,
    decide,
    pdb_voters,
)
from etcd_operator.resources.labels import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    member_selector,
)
from etcd_operator.status import next_status, round_of

FINALIZER = "etcd.operator.io/finalizer"

# What kopf itself does for the handlers below.
rbac.needs(EtcdClusterResource, "list", "watch", why="kopf: a daemon per cluster, deletions")
rbac.needs(EtcdClusterResource, "patch", why="kopf: its finalizer and bookkeeping annotations")
rbac.needs(Pod, "list", "watch", why="kopf: member pod events wake the cluster's loop")
rbac.needs(Event, "create", why="kopf.event / kopf.warn: one Event per step")
rbac.needs(CustomResourceDefinition, "list", "watch", why="kopf: follows CRD changes")
rbac.needs(Namespace, "list", "watch", why="kopf with --namespace: follows namespaces")
# What the handlers do.
rbac.needs(EtcdClusterResource, "get", why="each round reads the resource afresh")
rbac.needs(EtcdClusterResource.Status, "patch", why="each round's status, invalid specs")
rbac.needs(
    PersistentVolumeClaim, "list", "delete", why="deletion: claims follow whenDeleted: Delete"
)

log = logging.getLogger(__name__)

# Seconds until the next round when nothing wakes the loop earlier.
AFTER_ACTION = 1.0
AFTER_WAIT = 2.0
AFTER_ERROR = 5.0
IN_SYNC = 15.0
PAUSED = 30.0

_wakeups: dict[tuple[str, str], asyncio.Event] = {}


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
    memo.kube = new_client()


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    kube: AsyncClient | None = getattr(memo, "kube", None)
    if kube is not None:
        await kube.close()


@kopf.on.event("", "v1", "pods", labels={MANAGED_BY_LABEL: MANAGED_BY})
async def member_pod_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    instance = body.get("metadata", {}).get("labels", {}).get(INSTANCE_LABEL)
    wake = _wakeups.get((namespace or "", instance or ""))
    if wake is not None:
        wake.set()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def reconcile_forever(
    stopped: kopf.DaemonStopped, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    namespace = namespace or "default"
    key = (namespace, name)
    wake = _wakeups.setdefault(key, asyncio.Event())
    try:
        while not stopped:
            wake.clear()
            try:
                delay = await reconcile_once(memo.kube, namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The loop must outlive any single bad round (API hiccup, bug): log, retry.
                log.exception("reconcile of %s/%s failed", namespace, name)
                delay = AFTER_ERROR
            await _sleep(wake, stopped, delay)
    finally:
        _wakeups.pop(key, None)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def cluster_deleted(
    body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Pods and services go with their owner; claims follow `pvcRetentionPolicy.whenDeleted`."""
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


async def reconcile_once(kube: AsyncClient, namespace: str, name: str) -> float:
    """One round for one cluster; returns the seconds until the next round is due."""
    raw = await kube.get(EtcdClusterResource, name, namespace=namespace)
    body: dict[str, Any] = raw.to_dict()  # type: ignore[no-untyped-call]
    event_target = kopf.Body(cast(kopf.RawBody, body))
    try:
        cluster = parse_cluster(body)
    except InvalidSpecError as e:
        await _report_invalid_spec(kube, body, e)
        return PAUSED
    deleting = bool(body["metadata"].get("deletionTimestamp"))
    world = await observe(kube, cluster, deleting=deleting)
    if not deleting:
        await ensure_cluster_objects(kube, cluster, pdb_voters(world.observed))
    decision = decide(world.observed)
    error: str | None = None
    delay = _delay_for(decision)
    if acts(decision.step):
        kopf.event(
            event_target, type="Normal", reason=decision.reason.value, message=decision.message
        )
    elif isinstance(decision.step, Degraded) and _newly_degraded(cluster, decision):
        kopf.event(
            event_target, type="Warning", reason=decision.reason.value, message=decision.message
        )
    try:
        await apply_step(kube, cluster, world, decision.step)
    except StepNotReady:
        delay = AFTER_WAIT
    except (EtcdError, ApiError, ForeignClaim) as e:
        error = str(e)
        delay = AFTER_ERROR
        kopf.event(
            event_target,
            type="Warning",
            reason="StepFailed",
            message=f"{decision.reason.value}: {error}",
        )
    log.info("%s/%s: %s (%s)", namespace, name, decision.reason.value, decision.message)
    await _write_status(kube, cluster, world, decision, error)
    return delay


def _delay_for(decision: Decision) -> float:
    match decision.step:
        case InSync():
            return IN_SYNC
        case Paused() | Done():
            return PAUSED
        case Wait():
            return AFTER_WAIT
        case Degraded():
            return AFTER_ERROR
        case _:
            return AFTER_ACTION


def _newly_degraded(cluster: EtcdCluster, decision: Decision) -> bool:
    conditions = (cluster.status.conditions or []) if cluster.status else []
    before = next((c for c in conditions if c.type == "Degraded"), None)
    return before is None or before.status != "True" or before.reason != decision.reason.value


async def _write_status(
    kube: AsyncClient, cluster: EtcdCluster, world: World, decision: Decision, error: str | None
) -> None:
    members = world.cluster_members
    cluster_id = members.cluster_id if members else None
    new = next_status(
        round_of(world.observed, decision, cluster_id=cluster_id, error=error),
        cluster.status,
        datetime.now(UTC),
    )
    payload = new.model_dump(mode="json", by_alias=True)
    previous = cluster.status.model_dump(mode="json", by_alias=True) if cluster.status else None
    if payload == previous:
        return  # an unchanged status is not worth a write (and a watch event per watcher)
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
    message = str(e)
    kopf.warn(
        kopf.Body(cast(kopf.RawBody, body)), reason=Reason.INVALID_SPEC.value, message=message
    )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    condition = {
        "type": "Degraded",
        "status": "True",
        "reason": Reason.INVALID_SPEC.value,
        "message": message[:32768],
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


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
