"""kopf wiring for EtcdBackup: one loop per backup until it is final (thin shell).

Each round observes the backup, its Job and the Job's pods (each pod is one attempt and
reports its result in its termination message), asks `backup.decide` what to do, creates
the Job when told to, writes status if it changed and posts what changed as Events. The
snapshot itself runs in the Job, so the operator stays responsive however large it is. A
final backup (Succeeded or Failed) ends its loop; after an operator restart it costs one
read.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from lightkube import AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod
from lightkube.types import PatchType

from etcd_operator import metrics, rbac
from etcd_operator.api import GROUP, VERSION, InvalidSpecError, parse_cluster
from etcd_operator.api.backup import PLURAL, EtcdBackup, EtcdBackupStatus, parse_backup
from etcd_operator.backup.contract import Result
from etcd_operator.backup.decide import (
    Attempt,
    BackupObserved,
    JobState,
    Kind,
    events,
    next_status,
)
from etcd_operator.backup.decide import (
    decide as decide_backup,
)
from etcd_operator.backup.destination import location_of, to_env
from etcd_operator.handlers.access import etcd_access, operator_secret
from etcd_operator.handlers.apply import operator_image
from etcd_operator.handlers.idempotent import create_once, get_or_none
from etcd_operator.handlers.rounds import follow
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource
from etcd_operator.resources.backup_job import (
    BACKUP_LABEL,
    CONTAINER,
    BackupJobInputs,
    backup_job,
    job_name,
)
from etcd_operator.resources.labels import CLUSTER_UID_ANNOTATION
from etcd_operator.resources.root_secret import root_secret_name

rbac.needs(EtcdBackupResource, "list", "watch", why="kopf: a loop per backup until it is final")
rbac.needs(EtcdBackupResource, "patch", why="kopf: its finalizer and bookkeeping annotations")
rbac.needs(EtcdBackupResource, "get", why="each backup round reads the resource afresh")
rbac.needs(EtcdBackupResource.Status, "patch", why="backup status: phase, result, conditions")
rbac.needs(
    EtcdBackupResource, "update", subresource="finalizers", why="blockOwnerDeletion on its Job"
)
rbac.needs(Job, "get", "create", why="backup: the Job that takes the snapshot")
rbac.needs(Pod, "list", why="backup: each Job pod's result, from its termination message")
rbac.needs(EtcdClusterResource, "get", why="backup: the cluster's members, TLS and auth")
rbac.needs(PersistentVolumeClaim, "get", why="backup: the destination claim exists")

log = logging.getLogger(__name__)
RUNNING_DELAY = 2.0
BLOCKED_DELAY = 10.0


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def follow_backup(
    stopped: kopf.DaemonStopped, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    ns = namespace or "default"
    await follow(
        stopped,
        memo.leader,
        lambda: backup_round(memo.kube, ns, name),  # None once final
        what=f"backup round of {ns}/{name}",
        error_delay=BLOCKED_DELAY,
    )


def _job_state(job: Job) -> JobState:
    status = job.status
    if status is None:
        return JobState()
    conditions = {c.type: c for c in status.conditions or [] if c.status == "True"}
    failed = conditions.get("Failed")
    return JobState(
        active=status.active or 0,
        failed=status.failed or 0,
        succeeded=status.succeeded or 0,
        complete="Complete" in conditions,
        failed_reason=None if failed is None else (failed.reason or "Failed"),
        failed_message="" if failed is None else (failed.message or ""),
    )


def _attempt(pod: Pod) -> Attempt:
    name = pod.metadata.name if pod.metadata and pod.metadata.name else "?"
    statuses = (pod.status.containerStatuses if pod.status else None) or []
    state = next((s.state for s in statuses if s.name == CONTAINER), None)
    terminated = state.terminated if state is not None else None
    phase = pod.status.phase if pod.status else None
    if terminated is None:
        return Attempt(name, finished=phase in ("Succeeded", "Failed"), result=None)
    message = terminated.message or ""
    return Attempt(
        name,
        finished=True,
        result=Result.from_json(message),
        exit_code=terminated.exitCode,
        message=message,
    )


async def _attempts(kube: AsyncClient, backup: EtcdBackup) -> tuple[Attempt, ...]:
    pods = [
        pod
        async for pod in kube.list(
            Pod, namespace=backup.namespace, labels={BACKUP_LABEL: backup.name}
        )
    ]
    pods.sort(key=lambda p: (p.metadata.creationTimestamp if p.metadata else None) or datetime.min)
    return tuple(_attempt(p) for p in pods)


async def _job_inputs(kube: AsyncClient, backup: EtcdBackup) -> BackupJobInputs | tuple[str, str]:
    """What the Job needs, or (reason, message) why it cannot be made now."""
    ns = backup.namespace
    raw = await get_or_none(kube, EtcdClusterResource, backup.spec.cluster_name, ns)
    if raw is None:
        return "ClusterNotFound", f"EtcdCluster {backup.spec.cluster_name} does not exist"
    try:
        cluster = parse_cluster(raw.to_dict())
    except InvalidSpecError as e:
        return "ClusterInvalid", str(e)
    secrets = SecretReader(kube, ns)
    access = await etcd_access(secrets, cluster)
    if access.problem is not None:
        return "ClusterAccessUnavailable", access.problem
    # Members whose client URL has the scheme the operator connects with (while TLS is
    # being switched on, some still serve plaintext only).
    scheme = access.member_tls.client_scheme + "://"
    members = (cluster.status.members if cluster.status else None) or []
    endpoints = [m.client_url for m in members if m.client_url and m.client_url.startswith(scheme)]
    if not endpoints:
        return "ClusterNotReady", f"EtcdCluster {cluster.name} has no {scheme} members yet"
    s3 = backup.spec.destination.s3
    credentials = s3.credentials_secret_name if s3 is not None else None
    if credentials is not None and await secrets.get(credentials) is None:
        return "CredentialsSecretNotFound", f"Secret {credentials} does not exist"
    volume = backup.spec.destination.volume
    claim = volume.claim_name if volume is not None else None
    if claim is not None and await get_or_none(kube, PersistentVolumeClaim, claim, ns) is None:
        return "ClaimNotFound", f"PersistentVolumeClaim {claim} does not exist"
    return BackupJobInputs(
        image=operator_image(),
        endpoints=endpoints,
        destination=to_env(location_of(backup)),
        tls_secret=operator_secret(cluster) if access.member_tls.client else None,
        root_secret=root_secret_name(cluster) if cluster.spec.auth.enabled else None,
        cluster_uid=cluster.metadata.uid or None,
    )


async def _recall_stored(
    kube: AsyncClient, backup: EtcdBackup, status: EtcdBackupStatus, namespace: str
) -> None:
    """A stored backup seen again (this process started, or took over): the last-backup
    series comes from the recorded status, so a restart does not silence the "no backup in N
    hours" alert until the next backup. Only for a cluster that exists: a deleted one must
    get no series (it would alert forever)."""
    if status.phase != "Succeeded" or status.completion_time is None:
        return
    cluster = backup.spec.cluster_name
    if await get_or_none(kube, EtcdClusterResource, cluster, namespace) is not None:
        metrics.set_last_backup(namespace, cluster, status.completion_time.timestamp())


def _cluster_uid_of(job: Job | None) -> str | None:
    meta = job.metadata if job is not None else None
    return ((meta.annotations if meta else None) or {}).get(CLUSTER_UID_ANNOTATION)


async def backup_round(kube: AsyncClient, namespace: str, name: str) -> float | None:
    """One round; the seconds until the next, None once the backup is final."""
    raw = await get_or_none(kube, EtcdBackupResource, name, namespace)
    if raw is None:
        return None
    body: dict[str, Any] = raw.to_dict()
    backup = parse_backup(body)
    status = backup.status or EtcdBackupStatus()
    job = await get_or_none(kube, Job, job_name(backup), namespace)
    blocked: tuple[str, str] | None = None
    inputs: BackupJobInputs | None = None
    if job is None and status.phase not in ("Succeeded", "Failed"):
        found = await _job_inputs(kube, backup)
        if isinstance(found, tuple):
            blocked = found
        else:
            inputs = found
    seen = BackupObserved(
        status=status,
        generation=backup.metadata.generation,
        job_name=job_name(backup),
        job=None if job is None else _job_state(job),
        attempts=await _attempts(kube, backup) if job is not None else (),
        blocked=blocked,
    )
    decision = decide_backup(seen)
    if decision.kind is Kind.DONE:
        await _recall_stored(kube, backup, status, namespace)
        return None
    if decision.kind is Kind.CREATE_JOB:
        assert inputs is not None
        await create_once(kube, backup_job(backup, inputs))
    new = next_status(seen, decision, datetime.now(UTC))
    if new.cluster_uid is None:
        # Whose backup this is, from the Job that takes it (made this round or before).
        uid = inputs.cluster_uid if inputs is not None else _cluster_uid_of(job)
        if uid:
            new = new.model_copy(update={"cluster_uid": uid})
    target = kopf.Body(cast(kopf.RawBody, body))
    for note in events(status, decision):
        kopf.event(target, type="Warning" if note.warning else "Normal", reason=note.reason,
                   message=note.message)  # fmt: skip
    payload = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    if payload != status.model_dump(mode="json", by_alias=True, exclude_none=True):
        await kube.patch(
            EtcdBackupResource.Status,
            name,
            {"status": payload},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    log.info("%s/%s: %s %s: %s", namespace, name, decision.kind.value, decision.reason,
             decision.message)  # fmt: skip
    if decision.kind is Kind.SUCCEEDED and new.completion_time is not None:
        # What "no backup in N hours" alerts on (etcd_operator_cluster_last_backup_...).
        metrics.set_last_backup(
            namespace, backup.spec.cluster_name, new.completion_time.timestamp()
        )
    if decision.kind in (Kind.SUCCEEDED, Kind.FAILED):
        return None
    return BLOCKED_DELAY if decision.kind is Kind.WAIT else RUNNING_DELAY
