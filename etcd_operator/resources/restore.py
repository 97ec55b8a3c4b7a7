"""Pods that read a snapshot: the init steps that restore it into an initial member, and the
pod that verifies it before an EtcdRestore creates anything.

Both fetch the snapshot with the operator's image (`etcd-operator snapshot-fetch`: a checked
copy into an emptyDir, sha256 and etcd's hash trailer) and run etcd's own `etcdutl` from the
etcd image the cluster runs, so the tool that restores is the tool that checked.
"""

from __future__ import annotations

import json

from lightkube.models.core_v1 import (
    Container,
    EmptyDirVolumeSource,
    PersistentVolumeClaimVolumeSource,
    PodSecurityContext,
    PodSpec,
    ResourceRequirements,
    SeccompProfile,
    SecretVolumeSource,
    Volume,
    VolumeMount,
)
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import Pod

from etcd_operator.api.restore import EtcdRestore
from etcd_operator.api.snapshot_source import SnapshotLocation
from etcd_operator.resources.labels import MANAGED_BY, MANAGED_BY_LABEL, owner_reference
from etcd_operator.resources.security import restricted_container_security

SNAPSHOT_VOLUME = "snapshot"
SNAPSHOT_DIR = "/var/lib/etcd-snapshot"
SNAPSHOT_FILE = f"{SNAPSHOT_DIR}/snapshot.db"
SOURCE_VOLUME = "snapshot-source"
SOURCE_DIR = "/var/lib/etcd-snapshot-source"
S3_VOLUME = "snapshot-s3-credentials"
S3_DIR = "/etc/etcd-snapshot/s3"
FETCH_CONTAINER = "snapshot-fetch"
RESTORE_CONTAINER = "snapshot-restore"
COMMIT_CONTAINER = "restore-commit"
CHECK_CONTAINER = "snapshot-check"
STATUS_CONTAINER = "snapshot-status"
# Flags of a member's etcd command line that `etcdutl snapshot restore` takes too: the restored
# member must be exactly the member etcd then starts as.
_RESTORE_FLAGS = (
    "--name=",
    "--initial-cluster=",
    "--initial-cluster-token=",
    "--initial-advertise-peer-urls=",
)
RUN_AS_ID = 65532
_SMALL = ResourceRequirements(requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "256Mi"})


def restore_flags(etcd_args: list[str]) -> list[str]:
    """The flags of `etcd_args` that `etcdutl snapshot restore` must be given as well."""
    picked = [a for a in etcd_args if a.startswith(_RESTORE_FLAGS)]
    if len(picked) != len(_RESTORE_FLAGS):
        raise ValueError("the member's command line lacks a flag the restore needs")
    return picked


def source_parts(location: SnapshotLocation) -> tuple[list[Volume], list[VolumeMount], list[str]]:
    """What the fetch step needs to read the snapshot: volumes, their read-only mounts and its
    `snapshot-fetch` arguments naming the source (no credential: a Secret is mounted)."""
    if location.s3 is not None:
        s3 = location.s3
        where = {
            "bucket": s3.bucket,
            "key": s3.key,
            "endpointURL": s3.endpoint_url,
            "region": s3.region,
            "forcePathStyle": s3.force_path_style,
        }
        args = [f"--s3={json.dumps(where, sort_keys=True)}"]
        if s3.credentials_secret_name is None:
            return [], [], args
        volume = Volume(
            name=S3_VOLUME,
            secret=SecretVolumeSource(secretName=s3.credentials_secret_name, defaultMode=0o440),
        )
        mount = VolumeMount(name=S3_VOLUME, mountPath=S3_DIR, readOnly=True)
        return [volume], [mount], [*args, f"--s3-credentials={S3_DIR}"]
    volume_source = location.volume
    if volume_source is None:  # admission: exactly one source
        raise ValueError("no snapshot source")
    return (
        [
            Volume(
                name=SOURCE_VOLUME,
                persistentVolumeClaim=PersistentVolumeClaimVolumeSource(
                    claimName=volume_source.claim_name, readOnly=True
                ),
            )
        ],
        [VolumeMount(name=SOURCE_VOLUME, mountPath=SOURCE_DIR, readOnly=True)],
        [f"--source={SOURCE_DIR}/{volume_source.path}"],
    )


def _fetch(
    location: SnapshotLocation, image: str, *, staging: VolumeMount | None, clear: str | None
) -> Container:
    _, mounts, source = source_parts(location)
    args = ["snapshot-fetch", *source, f"--target={SNAPSHOT_FILE}"]
    if location.sha256:
        args.append(f"--sha256={location.sha256}")
    mounts = [*mounts, VolumeMount(name=SNAPSHOT_VOLUME, mountPath=SNAPSHOT_DIR)]
    if staging is not None and clear is not None:
        args.append(f"--clear-staging={clear}")
        mounts.append(staging)
    return _container(FETCH_CONTAINER, image, ["etcd-operator"], args, mounts)


def _container(
    name: str, image: str, command: list[str], args: list[str], mounts: list[VolumeMount]
) -> Container:
    return Container(
        name=name,
        image=image,
        imagePullPolicy="IfNotPresent",
        command=command,
        args=args,
        volumeMounts=mounts,
        resources=_SMALL,
        securityContext=restricted_container_security(),
        terminationMessagePolicy="FallbackToLogsOnError",
    )


def member_restore(
    location: SnapshotLocation,
    etcd_args: list[str],
    *,
    data_dir: str,
    data_mount: VolumeMount,
    etcd_image: str,
    operator_image: str,
) -> tuple[list[Container], list[Volume]]:
    """The init steps (after member-init) that restore the snapshot as this member, and the
    volumes they add. `etcdutl` writes into a staging directory on the member's volume;
    `restore-commit` renames it to the data directory only when that holds no member yet, so a
    pod whose data directory has data (a restarted initial member) is never restored again."""
    staging = f"{data_mount.mountPath}/restore-staging"
    sources, _, _ = source_parts(location)
    fetch = _fetch(location, operator_image, staging=data_mount, clear=staging)
    snapshot_mount = VolumeMount(name=SNAPSHOT_VOLUME, mountPath=SNAPSHOT_DIR)
    restore = _container(
        RESTORE_CONTAINER,
        etcd_image,
        ["etcdutl"],
        [
            "snapshot",
            "restore",
            SNAPSHOT_FILE,
            *restore_flags(etcd_args),
            f"--data-dir={staging}",
        ],
        [snapshot_mount, data_mount],
    )
    commit = _container(
        COMMIT_CONTAINER,
        operator_image,
        ["etcd-operator"],
        ["restore-commit", f"--staging={staging}", f"--data-dir={data_dir}"],
        [data_mount],
    )
    volumes = [*sources, Volume(name=SNAPSHOT_VOLUME, emptyDir=EmptyDirVolumeSource())]
    return [fetch, restore, commit], volumes


def verification_pod_name(restore: EtcdRestore) -> str:
    # Pod names may be 253 characters; the restore's name is at most that minus the suffix.
    return f"{restore.name[:240]}-verify"


def verification_pod(
    restore: EtcdRestore, location: SnapshotLocation, *, operator_image: str
) -> Pod:
    """The pod that checks the snapshot before an EtcdRestore creates anything (see
    `snapshot_check_pod`)."""
    assert restore.metadata.uid, "the restore must exist before its verification pod"
    owner = owner_reference(restore)
    return snapshot_check_pod(
        verification_pod_name(restore),
        restore.namespace,
        owner,
        location,
        etcd_image=restore.spec.cluster.spec.effective_image,
        operator_image=operator_image,
        component="restore",
    )


def snapshot_check_pod(
    name: str,
    namespace: str,
    owner: OwnerReference,
    location: SnapshotLocation,
    *,
    etcd_image: str,
    operator_image: str,
    component: str,
) -> Pod:
    """A pod that checks a snapshot: the checked copy (sha256, etcd's trailer), then `etcdutl
    snapshot restore` into a scratch directory (etcd's own integrity check, with the etcd
    version the cluster will run), then `etcdutl snapshot status`, whose JSON line (revision,
    keys) the controller reads from the container's log."""
    sources, _, _ = source_parts(location)
    snapshot_mount = VolumeMount(name=SNAPSHOT_VOLUME, mountPath=SNAPSHOT_DIR)
    check = _container(
        CHECK_CONTAINER,
        etcd_image,
        ["etcdutl"],
        ["snapshot", "restore", SNAPSHOT_FILE, f"--data-dir={SNAPSHOT_DIR}/check"],
        [snapshot_mount],
    )
    status = _container(
        STATUS_CONTAINER,
        etcd_image,
        ["etcdutl"],
        ["snapshot", "status", SNAPSHOT_FILE, "--write-out=json"],
        [snapshot_mount],
    )
    return Pod(
        metadata=ObjectMeta(
            name=name,
            namespace=namespace,
            labels={MANAGED_BY_LABEL: MANAGED_BY, "app.kubernetes.io/component": component},
            ownerReferences=[owner],
        ),
        spec=PodSpec(
            restartPolicy="Never",
            initContainers=[_fetch(location, operator_image, staging=None, clear=None), check],
            containers=[status],
            volumes=[*sources, Volume(name=SNAPSHOT_VOLUME, emptyDir=EmptyDirVolumeSource())],
            enableServiceLinks=False,
            automountServiceAccountToken=False,
            securityContext=PodSecurityContext(
                runAsNonRoot=True,
                runAsUser=RUN_AS_ID,
                runAsGroup=RUN_AS_ID,
                fsGroup=RUN_AS_ID,
                seccompProfile=SeccompProfile(type="RuntimeDefault"),
            ),
        ),
    )
