"""`EtcdCluster.spec` (v1alpha1): what the user asks for.

Every field with a sensible default carries it in the schema, so the API server
fills it in and `kubectl get -o yaml` shows the effective configuration.
Roadmap fields (`tls`, `auth`, `maintenance`, `recovery`, `backup`) will join
`EtcdClusterSpec` as optional sub-objects of their own, like `storage` and `etcd`.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import ConfigDict, Field, model_validator

from etcd_operator.api.common import (
    ApiModel,
    CompactionMode,
    FreeForm,
    IntOrQuantity,
    Quantity,
    RetentionPolicy,
    cel,
    validations,
)
from etcd_operator.api.maintenance_spec import MaintenanceSpec
from etcd_operator.api.quantity import parse_quantity
from etcd_operator.api.recovery_spec import RecoverySpec
from etcd_operator.api.rollback_spec import RollbackSpec
from etcd_operator.api.snapshot_source import BootstrapSpec
from etcd_operator.api.tls_spec import TLS_MODE_RULES, TLSSpec
from etcd_operator.naming import MAX_REPLICAS
from etcd_operator.versions import (
    DEFAULT_ETCD_VERSION,
    ETCD_VERSION_PATTERN,
    IMAGE_TAG_SUFFIX_PATTERN,
    IMAGE_TAG_VERSION_PATTERN,
    etcd_image,
    image_version,
    image_with_version,
)

MIN_REPLICAS = 1
# etcd's advice: election timeout at least 5x the heartbeat interval, at most 50s.
ELECTION_TO_HEARTBEAT_MIN_RATIO = 5
MAX_ELECTION_TIMEOUT_MS = 50_000
_DURATION_OR_INTEGER = r"^([0-9]+|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$"


def _object_default() -> dict[str, Any]:
    # An object field with defaulted sub-fields is defaulted to `{}` in the schema;
    # the API server then applies the sub-fields' own defaults.
    return {"default": {}}


class StorageSpec(ApiModel):
    """Where each member keeps its data: one PersistentVolumeClaim per member, or an emptyDir."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.storageClassName) == has(oldSelf.storageClassName) && "
                "(!has(self.storageClassName) || "
                "self.storageClassName == oldSelf.storageClassName)",
                "storage.storageClassName is immutable",
            ),
            cel(
                "has(self.emptyDir) == has(oldSelf.emptyDir) && "
                "(!has(self.emptyDir) || self.emptyDir == oldSelf.emptyDir)",
                "storage.emptyDir is immutable",
            ),
        )
    )

    size: Quantity = Field(
        default="1Gi",
        description=(
            "Size of each member's volume (or the sizeLimit of its emptyDir). "
            "It may grow but never shrink; etcd's backend quota should stay well below it."
        ),
        json_schema_extra=validations(
            cel("quantity(self).isGreaterThan(quantity('0'))", "storage.size must be positive"),
            cel(
                "quantity(self).compareTo(quantity(oldSelf)) >= 0",
                "storage.size may grow but not shrink",
            ),
        ),
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "StorageClass of the members' claims; unset means the cluster's default class. "
            "Immutable."
        ),
    )
    empty_dir: bool = Field(
        default=False,
        description=(
            "Keep data in an emptyDir instead of a PersistentVolumeClaim: data does not "
            "survive a pod's deletion, only for tests and caches. Immutable."
        ),
    )

    @model_validator(mode="after")
    def _size_is_positive(self) -> Self:
        if parse_quantity(self.size) <= 0:
            raise ValueError("storage.size must be positive")
        return self


class ResourceRequirements(ApiModel):
    """Compute resources of the etcd container (as in a container's `resources`)."""

    requests: dict[str, IntOrQuantity] | None = Field(
        default=None, description="Minimum resources, e.g. {cpu: 500m, memory: 1Gi}."
    )
    limits: dict[str, IntOrQuantity] | None = Field(
        default=None, description="Maximum resources, e.g. {memory: 2Gi}."
    )


class PodTemplate(ApiModel):
    """What the operator copies into every member pod. Labels and annotations the
    operator sets itself win over these."""

    labels: dict[str, str] | None = Field(default=None, description="Extra pod labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Extra pod annotations.")
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the etcd container."
    )
    affinity: FreeForm | None = Field(
        default=None,
        description=(
            "Pod affinity (core/v1 Affinity). Unset: members prefer different nodes "
            "(preferred pod anti-affinity on kubernetes.io/hostname)."
        ),
    )
    tolerations: list[FreeForm] | None = Field(
        default=None, description="Pod tolerations (core/v1 Toleration)."
    )
    node_selector: dict[str, str] | None = Field(default=None, description="Pod node selector.")
    topology_spread_constraints: list[FreeForm] | None = Field(
        default=None, description="Pod topology spread constraints (core/v1)."
    )
    priority_class_name: str | None = Field(
        default=None, max_length=253, description="PriorityClass of the member pods."
    )


class EtcdTuning(ApiModel):
    """etcd server settings; each maps to the etcd flag of the same name."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                # has() guards: the API server also checks rules against the default {}.
                "!has(self.electionTimeoutMs) || !has(self.heartbeatIntervalMs) || "
                f"self.electionTimeoutMs >= {ELECTION_TO_HEARTBEAT_MIN_RATIO} * "
                "self.heartbeatIntervalMs",
                "etcd.electionTimeoutMs must be at least 5 times etcd.heartbeatIntervalMs",
            ),
            cel(
                "!has(self.autoCompactionMode) || self.autoCompactionMode != 'revision' || "
                "(has(self.autoCompactionRetention) && "
                "self.autoCompactionRetention.matches('^[0-9]+$'))",
                "etcd.autoCompactionRetention must be a number of revisions "
                "when autoCompactionMode is revision",
            ),
        )
    )

    quota_backend_bytes: int | None = Field(
        default=None,
        ge=1,
        description=(
            "--quota-backend-bytes: size at which the backend raises the NOSPACE alarm. "
            "Unset: etcd's default (2 GiB); etcd advises at most 8 GiB."
        ),
        json_schema_extra={"format": "int64"},
    )
    auto_compaction_mode: CompactionMode = Field(
        default="periodic",
        description="--auto-compaction-mode: periodic (by time) or revision (by count).",
    )
    auto_compaction_retention: str = Field(
        default="1h",
        pattern=_DURATION_OR_INTEGER,
        max_length=32,
        description=(
            "--auto-compaction-retention: history to keep, a duration such as 1h or 30m "
            "(periodic) or a number of revisions (revision)."
        ),
    )
    snapshot_count: int | None = Field(
        default=None,
        ge=1,
        description=(
            "--snapshot-count: committed transactions between snapshots to disk. "
            "Unset: the default of the etcd version."
        ),
        json_schema_extra={"format": "int64"},
    )
    heartbeat_interval_ms: int = Field(
        default=100,
        ge=10,
        le=10_000,
        description=(
            "--heartbeat-interval in milliseconds; about the round-trip time between members."
        ),
    )
    election_timeout_ms: int = Field(
        default=1000,
        ge=50,
        le=MAX_ELECTION_TIMEOUT_MS,
        description=(
            "--election-timeout in milliseconds; at least 5 times the heartbeat interval, "
            "at most 50000."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.election_timeout_ms < ELECTION_TO_HEARTBEAT_MIN_RATIO * self.heartbeat_interval_ms:
            raise ValueError(
                "etcd.electionTimeoutMs must be at least 5 times etcd.heartbeatIntervalMs"
            )
        if self.auto_compaction_mode == "revision" and not self.auto_compaction_retention.isdigit():
            raise ValueError(
                "etcd.autoCompactionRetention must be a number of revisions "
                "when autoCompactionMode is revision"
            )
        return self


class PvcRetentionPolicy(ApiModel):
    """What happens to members' PersistentVolumeClaims (as a StatefulSet's policy).

    Both default to Retain, like a StatefulSet: data outlives mistakes. A retained
    claim of a removed member is never reused as-is; a member that joins again
    under the same name starts from an empty data directory.
    """

    when_deleted: RetentionPolicy = Field(
        default="Retain",
        description=(
            "Retain: claims stay when the EtcdCluster is deleted. Delete: they are "
            "garbage-collected with it."
        ),
    )
    when_scaled: RetentionPolicy = Field(
        default="Retain",
        description="Retain or Delete the claim of a member removed by scaling in.",
    )


class PodDisruptionBudgetSpec(ApiModel):
    """The PodDisruptionBudget that keeps voluntary evictions from breaking quorum."""

    enabled: bool = Field(
        default=True,
        description=(
            "Create a PodDisruptionBudget. Its minAvailable is the quorum of the voting "
            "members, computed by the operator."
        ),
    )


# A Secret's name: a DNS-1123 subdomain.
_SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class AuthSpec(ApiModel):
    """etcd authentication: user `root` (role `root`) created by the operator, which then
    calls etcd as root."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(oldSelf.enabled) && oldSelf.enabled && has(self.enabled) && self.enabled)"
                " || (has(self.rootSecretName) == has(oldSelf.rootSecretName) &&"
                " (!has(self.rootSecretName) || self.rootSecretName == oldSelf.rootSecretName))",
                "auth.rootSecretName cannot change while auth stays enabled: etcd keeps the"
                " password root had when auth was enabled; disable auth first",
            ),
        )
    )

    enabled: bool = Field(
        default=False,
        description=(
            "Enforce authentication: once the cluster has formed the operator creates user"
            " root with the password from rootSecretName, grants it role root and enables"
            " auth; clients must then authenticate. Setting it back to false disables auth"
            " (users and roles are kept)."
        ),
    )
    root_secret_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=_SECRET_NAME_PATTERN,
        description=(
            "Secret in the cluster's namespace holding root's password under the key"
            " `password`. Unset: the operator creates `<cluster>-root` with a random"
            " password, owned by the EtcdCluster."
        ),
    )


class NetworkPolicySpec(ApiModel):
    """The NetworkPolicy that limits who reaches the members' ports."""

    enabled: bool = Field(
        default=True,
        description=(
            "Create and keep a NetworkPolicy selecting the member pods: the peer port only "
            "from members of this cluster, the client and metrics ports as below. false "
            "deletes it (the pods are then as open as the namespace's other policies allow)."
        ),
    )
    clients_from: list[FreeForm] | None = Field(
        default=None,
        description=(
            "Who may reach the client port (2379): core/v1 NetworkPolicyPeers "
            "(podSelector, namespaceSelector, ipBlock). Unset: every pod of the cluster's "
            "namespace. The operator's own pod is always let in when it runs in one."
        ),
    )
    metrics_from: list[FreeForm] | None = Field(
        default=None,
        description=(
            "Who may reach the metrics port (2381, /metrics and health): NetworkPolicyPeers "
            "as clientsFrom. Unset: every pod of the cluster's namespace."
        ),
    )


# Five cron fields (minute hour day-of-month month day-of-week); croniter checks the values.
class EtcdClusterSpec(ApiModel):
    """The desired state of an etcd cluster."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"!has(self.image) || !self.image.matches('{IMAGE_TAG_VERSION_PATTERN}') || "
                "self.image.matches(':v?' + self.version.replace('.', '[.]') + "
                f"'{IMAGE_TAG_SUFFIX_PATTERN}')",
                "spec.image names another etcd release in its tag than spec.version: change "
                "both together (the operator runs the image's repository at each member's "
                "version)",
                reason="FieldValueInvalid",
            ),
            *TLS_MODE_RULES,
        )
    )

    replicas: int = Field(
        default=3,
        ge=MIN_REPLICAS,
        le=MAX_REPLICAS,
        description="Number of voting members, 1 to 9; odd numbers tolerate the most failures.",
    )
    version: str = Field(
        default=DEFAULT_ETCD_VERSION,
        pattern=ETCD_VERSION_PATTERN,
        max_length=32,
        description=(
            "etcd version, e.g. 3.6.16. Changing it performs a rolling upgrade, one member "
            "at a time: to any patch of the same minor, or to the next minor. Going back one "
            "minor rolls back an unfinished upgrade, or after a finished one uses etcd's "
            "downgrade API (etcd 3.6 and later)."
        ),
        json_schema_extra=validations(
            # The pattern guarantees 3.MINOR.PATCH, so split and int() cannot fail.
            cel(
                "self == oldSelf || int(self.split('.')[1]) <= int(oldSelf.split('.')[1]) + 1",
                "spec.version may move up one minor version at a time: etcd does not "
                "support skipping a minor version (e.g. 3.5 to 3.7); upgrade to the next "
                "minor version first",
                reason="FieldValueForbidden",
            ),
            cel(
                "self == oldSelf || int(self.split('.')[1]) >= int(oldSelf.split('.')[1]) - 1",
                "spec.version may not go down more than one minor version: etcd cannot "
                "downgrade across several minor versions",
                reason="FieldValueForbidden",
            ),
        ),
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description=(
            "etcd image. Unset: gcr.io/etcd-development/etcd:v<version>. When its tag names "
            "a release (registry.local/etcd:v3.6.16) it must name version, and a member "
            "running another version (during a rollout) runs the same repository with that "
            "version in the tag; any other tag or a digest must contain the release named "
            "by version, which the operator cannot check."
        ),
    )
    storage: StorageSpec = Field(
        default_factory=StorageSpec,
        description="Members' data volumes.",
        json_schema_extra=_object_default(),
    )
    pod_template: PodTemplate = Field(
        default_factory=PodTemplate,
        description="Scheduling, resources and metadata of member pods.",
    )
    etcd: EtcdTuning = Field(
        default_factory=EtcdTuning,
        description="etcd server tuning.",
        json_schema_extra=_object_default(),
    )
    pvc_retention_policy: PvcRetentionPolicy = Field(
        default_factory=PvcRetentionPolicy,
        description="Whether members' claims outlive the cluster and scale-in.",
        json_schema_extra=_object_default(),
    )
    pod_disruption_budget: PodDisruptionBudgetSpec = Field(
        default_factory=PodDisruptionBudgetSpec,
        description="The quorum-aware PodDisruptionBudget.",
        json_schema_extra=_object_default(),
    )
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec,
        description="The NetworkPolicy guarding the members' ports.",
        json_schema_extra=_object_default(),
    )
    tls: TLSSpec = Field(
        default_factory=TLSSpec,
        description="Mutual TLS between members and towards clients.",
        json_schema_extra=_object_default(),
    )
    auth: AuthSpec = Field(
        default_factory=AuthSpec,
        description="etcd authentication (user root, its password in a Secret).",
        json_schema_extra=_object_default(),
    )
    recovery: RecoverySpec = Field(
        default_factory=RecoverySpec,
        description="What to do when a majority of members is permanently lost.",
        json_schema_extra=_object_default(),
    )
    bootstrap: BootstrapSpec = Field(
        default_factory=BootstrapSpec,
        description="How the initial members start (e.g. from a snapshot). Immutable.",
        json_schema_extra={
            **_object_default(),
            **validations(cel("self == oldSelf", "spec.bootstrap is immutable")),
        },
    )
    rollback: RollbackSpec | None = Field(
        default=None,
        description=(
            "Roll the cluster back in place to an EtcdBackup (same name and Services). Done once"
            " per backup: status.rollback records it."
        ),
    )
    maintenance: MaintenanceSpec = Field(
        default_factory=MaintenanceSpec,
        description="Routine maintenance: defragmentation and corruption checks.",
        json_schema_extra=_object_default(),
    )
    paused: bool = Field(
        default=False,
        description=(
            "Stop reconciling: the operator changes nothing (status is still reported) "
            "until this is false again."
        ),
    )

    @model_validator(mode="after")
    def _image_names_the_version(self) -> Self:
        named = image_version(self.image) if self.image else None
        if named is not None and named != self.version:
            raise ValueError(
                f"spec.image names etcd {named} in its tag but spec.version is {self.version}:"
                " change both together"
            )
        return self

    @property
    def effective_image(self) -> str:
        """The image member pods run once every member runs `version`."""
        return self.image_for(self.version)

    def image_for(self, version: str) -> str:
        """The image of a member running `version`: the upstream image of it, or `image` with
        `version` in its tag when the tag names a release (else `image` as it is)."""
        if self.image is None:
            return etcd_image(version)
        return image_with_version(self.image, version)
