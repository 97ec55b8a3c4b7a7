"""Labels, annotations and owner references every object of a cluster carries."""

from __future__ import annotations

from lightkube.models.meta_v1 import OwnerReference

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.api.common import Resource
from etcd_operator.kube import EtcdClusterResource

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
MEMBER_LABEL = "etcd.operator.io/member"

APP_NAME = "etcd"
MANAGED_BY = "etcd-operator"

# Components (values of app.kubernetes.io/component).
MEMBER = "member"
PEER_SERVICE = "peer"
CLIENT_SERVICE = "client"

# Records on a member's claim (see planner/volumes.py): whose cluster it is (a label, so a
# claim of an earlier cluster of the same name is told apart), whose log it holds, and that
# its member was removed.
CLUSTER_UID_LABEL = "etcd.operator.io/cluster-uid"
MEMBER_ID_ANNOTATION = "etcd.operator.io/member-id"
# On a backup Job: the UID of the EtcdCluster it backs up (read when the Job was made).
CLUSTER_UID_ANNOTATION = "etcd.operator.io/cluster-uid"
RETIRED_ANNOTATION = "etcd.operator.io/retired"

# Pod annotations the operator reads back.
SPEC_HASH_ANNOTATION = "etcd.operator.io/spec-hash"
ETCD_VERSION_ANNOTATION = "etcd.operator.io/etcd-version"
# A digest of the parts of `spec` that shape a member pod (resources.pod.template_hash): a pod
# whose digest differs from the current spec's is restarted by a rollout.
TEMPLATE_HASH_ANNOTATION = "etcd.operator.io/template-hash"
# Pods record the static initial cluster they were bootstrapped with, so that a bootstrap
# interrupted by an operator restart resumes with the same member set.
BOOTSTRAP_MEMBERS_ANNOTATION = "etcd.operator.io/bootstrap-members"
# A digest of the trust bundle (ca.crt) a TLS member pod started with: etcd reads it only at
# start, so a pod whose digest differs from the current bundle's is restarted by a rollout.
TRUST_BUNDLE_ANNOTATION = "etcd.operator.io/trust-bundle"
# On the EtcdCluster: any new value asks for a CA rotation (mode Auto). The CA Secret records
# the value it handled, written in the same patch as the new CA.
ROTATE_CA_ANNOTATION = "etcd.operator.io/rotate-ca"
ROTATE_CA_HANDLED_ANNOTATION = "etcd.operator.io/rotate-ca-handled"
# A pod built with `--force-new-cluster` (a rebuild from a survivor of a lost quorum): etcd
# drops every other member each time it starts so, so the pod is rebuilt without it at once.
FORCE_NEW_CLUSTER_ANNOTATION = "etcd.operator.io/force-new-cluster"
# On the EtcdCluster: a member's name asks for that member to be replaced by a fresh one (new
# member ID, new claim). status.replacement records the request acted on; remove the
# annotation once done to be able to ask for the same member again.
REPLACE_MEMBER_ANNOTATION = "etcd.operator.io/replace-member"
# Services and the PDB carry the hash of what the operator last applied (resources.applied).
APPLIED_HASH_ANNOTATION = "etcd.operator.io/applied-hash"


# Setting blockOwnerDeletion needs update on the owner's finalizers (enforced by the
# OwnerReferencesPermissionEnforcement admission plugin where it is enabled).
rbac.needs(EtcdClusterResource, "update", subresource="finalizers", why="blockOwnerDeletion")


def cluster_labels(cluster: EtcdCluster, component: str) -> dict[str, str]:
    """The recommended `app.kubernetes.io/*` labels of one object of `cluster`."""
    return {
        NAME_LABEL: APP_NAME,
        INSTANCE_LABEL: cluster.name,
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: component,
    }


def member_labels(cluster: EtcdCluster, member: str) -> dict[str, str]:
    """Labels of a member's pod and claim: the cluster's, plus the member's name."""
    return {**cluster_labels(cluster, MEMBER), MEMBER_LABEL: member}


def member_selector(cluster: EtcdCluster) -> dict[str, str]:
    """Selects every member pod of `cluster` (and nothing else)."""
    return member_selector_of(cluster.name)


def member_selector_of(name: str) -> dict[str, str]:
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: name, COMPONENT_LABEL: MEMBER}


def selector_string(labels: dict[str, str]) -> str:
    """`k=v,k=v`, as the scale subresource's status.selector wants it."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def owner_reference(owner: Resource) -> OwnerReference:
    """Makes `owner` (an EtcdCluster, EtcdBackup, EtcdRestore...) the controller of an object,
    so deleting it garbage-collects the object."""
    return OwnerReference(
        apiVersion=owner.api_version,
        kind=owner.kind,
        name=owner.name,
        uid=owner.metadata.uid,
        controller=True,
        blockOwnerDeletion=True,
    )
