"""The data claim of one etcd member."""

from __future__ import annotations

from lightkube.models.core_v1 import PersistentVolumeClaimSpec, VolumeResourceRequirements
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim

from etcd_operator.api import EtcdCluster
from etcd_operator.naming import pvc_name
from etcd_operator.resources.labels import CLUSTER_UID_LABEL, member_labels, owner_reference


def member_pvc(
    cluster: EtcdCluster, member: str, claim: str | None = None
) -> PersistentVolumeClaim:
    """The claim `claim` (default `<member>`), ReadWriteOnce, of `spec.storage.size`, labelled
    with the cluster's UID: the first of the records that say whose data it holds.

    The claim is owned by the EtcdCluster only when `pvcRetentionPolicy.whenDeleted`
    is Delete: an owner reference is what makes the garbage collector delete it
    with the cluster, so under Retain (the default) it carries none, exactly as a
    StatefulSet treats its claims. Growing `storage.size` later is applied by
    patching `spec.resources.requests.storage` (if the StorageClass allows
    expansion); the other fields of a bound claim are immutable.
    """
    storage = cluster.spec.storage
    if storage.empty_dir:
        raise ValueError(f"{cluster.name} keeps its data in emptyDir volumes, not claims")
    owned = cluster.spec.pvc_retention_policy.when_deleted == "Delete"
    return PersistentVolumeClaim(
        metadata=ObjectMeta(
            name=claim or pvc_name(member),
            namespace=cluster.namespace,
            labels={**member_labels(cluster, member), CLUSTER_UID_LABEL: cluster.metadata.uid},
            ownerReferences=[owner_reference(cluster)] if owned else None,
        ),
        spec=PersistentVolumeClaimSpec(
            accessModes=["ReadWriteOnce"],
            resources=VolumeResourceRequirements(requests={"storage": storage.size}),
            storageClassName=storage.storage_class_name,
            volumeMode="Filesystem",
        ),
    )
