"""Custom resource models (v1alpha1); the CRD YAML is generated from them.

Handlers import from here: `parse_cluster(body)` / `parse_spec(spec)` give typed,
validated values; `EtcdClusterStatus(...).to_k8s()` is what goes into a status patch.
"""

from etcd_operator.api.cluster import (
    KIND,
    PLURAL,
    EtcdCluster,
    InvalidSpecError,
    ObjectMeta,
    parse_cluster,
    parse_spec,
    parse_status,
)
from etcd_operator.api.cluster_spec import (
    AuthSpec,
    EtcdClusterSpec,
    EtcdTuning,
    NetworkPolicySpec,
    PodDisruptionBudgetSpec,
    PodTemplate,
    PvcRetentionPolicy,
    ResourceRequirements,
    StorageSpec,
)
from etcd_operator.api.cluster_status import (
    CARotationStatus,
    ClusterPhase,
    ConditionType,
    CorruptionCheckStatus,
    EtcdClusterStatus,
    MemberStatus,
    ReplacementStatus,
)
from etcd_operator.api.common import (
    API_VERSION,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    LastOperation,
    OperationState,
)
from etcd_operator.versions import DEFAULT_ETCD_VERSION

__all__ = [
    "API_VERSION",
    "DEFAULT_ETCD_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "AuthSpec",
    "CARotationStatus",
    "ClusterPhase",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "CorruptionCheckStatus",
    "EtcdCluster",
    "EtcdClusterSpec",
    "EtcdClusterStatus",
    "EtcdTuning",
    "InvalidSpecError",
    "LastOperation",
    "MemberStatus",
    "NetworkPolicySpec",
    "ObjectMeta",
    "OperationState",
    "PodDisruptionBudgetSpec",
    "PodTemplate",
    "PvcRetentionPolicy",
    "ReplacementStatus",
    "ResourceRequirements",
    "StorageSpec",
    "parse_cluster",
    "parse_spec",
    "parse_status",
]
