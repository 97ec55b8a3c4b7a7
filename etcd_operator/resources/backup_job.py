"""The Job that takes one EtcdBackup's snapshot (pure builder).

One container of the operator's own image runs `etcd-operator backup`: told what to do in
its environment, given the operator's client certificate, root's password and the S3 keys
as Secret volumes (never in the environment or on the command line), with no Kubernetes
API access; it reports through its termination message. The pod passes the `restricted`
Pod Security Standard. Retries are the Job's (`backoffLimit`); an attempt that cannot
succeed by retrying (wrong keys, no bucket) exits with contract.PERMANENT_EXIT_CODE, which the
Job's podFailurePolicy turns into an immediate failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lightkube.models.batch_v1 import (
    JobSpec,
    PodFailurePolicy,
    PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyRule,
)
from lightkube.models.core_v1 import (
    Container,
    EnvVar,
    PersistentVolumeClaimVolumeSource,
    PodSecurityContext,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    SeccompProfile,
    SecretVolumeSource,
    Toleration,
    Volume,
    VolumeMount,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job

from etcd_operator.api.backup import EtcdBackup
from etcd_operator.backup import contract
from etcd_operator.resources.labels import (
    APP_NAME,
    CLUSTER_UID_ANNOTATION,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    owner_reference,
)
from etcd_operator.resources.pod import RUN_AS_ID, _from_dict
from etcd_operator.resources.security import restricted_container_security

BACKUP = "backup"  # app.kubernetes.io/component of backup Jobs and their pods
BACKUP_LABEL = "etcd.operator.io/backup"  # the EtcdBackup a Job or pod works for
CONTAINER = "backup"
_SECRET_FILE_MODE = 0o440  # readable by the group (fsGroup), not by others


@dataclass(frozen=True)
class BackupJobInputs:
    """What the operator resolved for the Job (values travel as arguments)."""

    image: str
    endpoints: Sequence[str]  # client URLs of the members (scheme says TLS)
    destination: str  # contract.ENV_DESTINATION
    tls_secret: str | None = None  # the operator's client certificate (cert-manager layout)
    root_secret: str | None = None  # root's password (key `password`)
    cluster_uid: str | None = None  # the EtcdCluster's, as read when the Job is made


def job_name(backup: EtcdBackup) -> str:
    return f"{backup.name}-backup"


def backup_labels(backup: EtcdBackup) -> dict[str, str]:
    return {
        NAME_LABEL: APP_NAME,
        INSTANCE_LABEL: backup.spec.cluster_name,
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: BACKUP,
        BACKUP_LABEL: backup.name,
    }


def backup_pod_selector(cluster: str) -> dict[str, str]:
    """Selects the backup pods of one cluster (the NetworkPolicy admits them as clients)."""
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: cluster, COMPONENT_LABEL: BACKUP}


def _secret_volume(name: str, secret: str, path: str) -> tuple[Volume, VolumeMount]:
    return (
        Volume(
            name=name, secret=SecretVolumeSource(secretName=secret, defaultMode=_SECRET_FILE_MODE)
        ),
        VolumeMount(name=name, mountPath=path, readOnly=True),
    )


def _volumes(backup: EtcdBackup, inputs: BackupJobInputs) -> list[tuple[Volume, VolumeMount]]:
    out = []
    if inputs.tls_secret is not None:
        out.append(_secret_volume("etcd-client-tls", inputs.tls_secret, contract.TLS_DIR))
    if inputs.root_secret is not None:
        out.append(_secret_volume("etcd-root", inputs.root_secret, contract.ROOT_DIR))
    s3 = backup.spec.destination.s3
    if s3 is not None and s3.credentials_secret_name is not None:
        out.append(_secret_volume("s3-credentials", s3.credentials_secret_name, contract.S3_DIR))
    volume = backup.spec.destination.volume
    if volume is not None:
        out.append(
            (
                Volume(
                    name="destination",
                    persistentVolumeClaim=PersistentVolumeClaimVolumeSource(
                        claimName=volume.claim_name
                    ),
                ),
                VolumeMount(name="destination", mountPath=contract.VOLUME_DIR),
            )
        )
    return out


def _resources(backup: EtcdBackup) -> ResourceRequirements:
    template = backup.spec.pod_template
    if template is not None and template.resources is not None:
        given = template.resources
        return ResourceRequirements(
            requests=dict(given.requests) if given.requests else None,
            limits=dict(given.limits) if given.limits else None,
        )
    # Measured: ~90 MiB peak whatever the snapshot's size (8 MiB parts, two in flight).
    return ResourceRequirements(
        requests={"cpu": "50m", "memory": "128Mi"}, limits={"memory": "256Mi"}
    )


def backup_job(backup: EtcdBackup, inputs: BackupJobInputs) -> Job:
    volumes = _volumes(backup, inputs)
    template = backup.spec.pod_template
    labels = backup_labels(backup)
    pod_labels = {**(template.labels or {} if template else {}), **labels}
    env = [
        EnvVar(name=contract.ENV_CLUSTER, value=backup.spec.cluster_name),
        EnvVar(name=contract.ENV_ENDPOINTS, value=",".join(inputs.endpoints)),
        EnvVar(name=contract.ENV_DESTINATION, value=inputs.destination),
    ]
    container = Container(
        name=CONTAINER,
        image=inputs.image,
        imagePullPolicy="IfNotPresent",
        command=["etcd-operator"],
        args=["backup"],
        env=env,
        volumeMounts=[m for _, m in volumes],
        resources=_resources(backup),
        securityContext=restricted_container_security(),
        terminationMessagePath=contract.RESULT_PATH,
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    pod = PodSpec(
        containers=[container],
        volumes=[v for v, _ in volumes] or None,
        restartPolicy="Never",  # retries are new pods, each with its own result
        automountServiceAccountToken=False,  # the pod never talks to the Kubernetes API
        enableServiceLinks=False,
        securityContext=PodSecurityContext(
            runAsNonRoot=True,
            runAsUser=RUN_AS_ID,
            runAsGroup=RUN_AS_ID,
            fsGroup=RUN_AS_ID,
            fsGroupChangePolicy="OnRootMismatch",
            seccompProfile=SeccompProfile(type="RuntimeDefault"),
        ),
        nodeSelector=dict(template.node_selector) if template and template.node_selector else None,
        tolerations=(
            [_from_dict(Toleration, t, "tolerations") for t in template.tolerations]
            if template and template.tolerations
            else None
        ),
    )
    return Job(
        metadata=ObjectMeta(
            name=job_name(backup),
            namespace=backup.namespace,
            labels=labels,
            annotations=(
                {CLUSTER_UID_ANNOTATION: inputs.cluster_uid} if inputs.cluster_uid else None
            ),
            ownerReferences=[owner_reference(backup)],
        ),
        spec=JobSpec(
            backoffLimit=backup.spec.backoff_limit,
            podFailurePolicy=PodFailurePolicy(
                rules=[
                    PodFailurePolicyRule(
                        action="FailJob",
                        onExitCodes=PodFailurePolicyOnExitCodesRequirement(
                            containerName=CONTAINER,
                            operator="In",
                            values=[contract.PERMANENT_EXIT_CODE],
                        ),
                    )
                ]
            ),
            template=PodTemplateSpec(
                metadata=ObjectMeta(
                    labels=pod_labels,
                    annotations=dict(template.annotations)
                    if template and template.annotations
                    else None,
                ),
                spec=pod,
            ),
        ),
    )
