"""`EtcdCluster.status` (v1alpha1): what the operator observed and did.

Written only by the operator, through the status subresource.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from etcd_operator.api.common import ApiModel, Condition, LastOperation, Sha256, conditions_field
from etcd_operator.api.maintenance_status import MaintenanceStatus
from etcd_operator.api.snapshot_source import SnapshotLocation


class ClusterPhase(StrEnum):
    """A one-word summary of the cluster for `kubectl get`; conditions carry the detail."""

    PENDING = "Pending"  # accepted, nothing created yet (or paused before bootstrap)
    CREATING = "Creating"  # bootstrapping the initial members
    RUNNING = "Running"  # all members healthy, nothing to do
    SCALING = "Scaling"  # adding or removing members
    UPGRADING = "Upgrading"  # restarting members with a new etcd version or spec
    HEALING = "Healing"  # replacing a failed member while quorum holds
    DEGRADED = "Degraded"  # quorum holds but members are unhealthy and cannot be fixed yet
    FAILED = "Failed"  # quorum lost or the spec cannot be acted on; needs a human
    DELETING = "Deleting"  # the EtcdCluster is being deleted


class ConditionType(StrEnum):
    AVAILABLE = "Available"  # the cluster has quorum and serves clients
    PROGRESSING = "Progressing"  # the operator is changing the cluster
    DEGRADED = "Degraded"  # fewer healthy members than desired


_HEX_ID = r"^[0-9a-f]{1,16}$"


# Status is read back leniently (extra fields ignored): the operator must never get
# stuck on a status written by an older or newer version of itself.
_LENIENT = ConfigDict(extra="ignore")


class MemberStatus(ApiModel):
    """One etcd member as the operator last saw it."""

    model_config = _LENIENT

    name: str = Field(max_length=253, description="Member (and pod) name, <cluster>-<ordinal>.")
    id: str | None = Field(
        default=None,
        pattern=_HEX_ID,
        description="etcd member ID in hex; unset until the member is added to the cluster.",
    )
    peer_url: str | None = Field(
        default=None, alias="peerURL", description="URL peers reach the member at."
    )
    client_url: str | None = Field(
        default=None, alias="clientURL", description="URL clients reach the member at."
    )
    is_learner: bool = Field(
        default=False, description="A learner replicates but does not vote yet."
    )
    healthy: bool = Field(default=False, description="The member answered its last health check.")
    version: str | None = Field(default=None, description="etcd version the member runs.")
    db_size: int | None = Field(
        default=None,
        ge=0,
        description="Size of the member's backend database in bytes.",
        json_schema_extra={"format": "int64"},
    )
    db_size_in_use: int | None = Field(
        default=None,
        ge=0,
        description="Bytes of the backend holding live data; the rest is free after compaction"
        " and returned to the disk by defragmentation.",
        json_schema_extra={"format": "int64"},
    )


class CARotationStatus(ApiModel):
    """Mode Auto: where the rotation of the cluster's CA stands."""

    model_config = _LENIENT

    phase: str = Field(
        max_length=32,
        description=(
            "Idle, or the rotation's phase: Distributing (trust bundles get the new CA), "
            "Restarting (members restart to trust it), Reissuing (certificates from the new "
            "CA), Presenting (waiting for members to serve them), Retiring (old CA dropped)."
        ),
    )
    message: str = Field(default="", max_length=1024, description="What is happening now.")
    handled_request: str | None = Field(
        default=None,
        max_length=253,
        description="The last value of the etcd.operator.io/rotate-ca annotation acted on.",
    )
    ca_not_after: datetime | None = Field(
        default=None, description="When the CA that signs the certificates now expires."
    )


class RollbackStatus(ApiModel):
    """An in-place rollback to an EtcdBackup (spec.rollback, or quorum-loss recovery
    FromLatestBackup): what is rolled back to, and how far it got. Each phase is written at the
    step that makes it true, so a restarted operator resumes it."""

    model_config = _LENIENT

    phase: str = Field(
        max_length=32,
        description=(
            "Stopping (members are stopped, their claims retired), Restoring (the members"
            " start from the snapshot), Completed."
        ),
    )
    cause: str = Field(
        default="Requested",
        max_length=32,
        description="Requested (spec.rollback) or QuorumLoss (spec.recovery FromLatestBackup).",
    )
    backup: str = Field(max_length=253, description="The EtcdBackup rolled back to.")
    backup_uid: str = Field(default="", max_length=64, description="Its UID.")
    requested_backup: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "QuorumLoss only: the EtcdBackup spec.rollback had already been rolled back to"
            " before this recovery, so that request is not carried out again."
        ),
    )
    requested_backup_uid: str = Field(default="", max_length=64, description="Its UID.")
    backup_completion_time: datetime | None = Field(
        default=None, description="When the backup's snapshot was stored."
    )
    sha256: Sha256 | None = Field(default=None, description="sha256 of the verified snapshot.")
    revision: int | None = Field(
        default=None,
        ge=0,
        description="etcd revision of the snapshot: the cluster serves it after the rollback.",
        json_schema_extra={"format": "int64"},
    )
    from_revision: int | None = Field(
        default=None,
        ge=0,
        description="The last revision the cluster was seen to serve before the rollback.",
        json_schema_extra={"format": "int64"},
    )
    from_cluster_id: str | None = Field(
        default=None, alias="fromClusterID", pattern=_HEX_ID, description="etcd cluster ID before."
    )
    epoch: int = Field(
        default=1,
        ge=1,
        description="Bootstraps since the cluster was created; part of the new cluster token.",
    )
    snapshot: SnapshotLocation | None = Field(
        default=None,
        description="Where the verified snapshot is read from (the backup's location).",
    )
    started_members: list[str] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Members restored in this epoch that were seen running etcd: never restored from"
            " the snapshot again under their old ID."
        ),
    )
    formed: bool = Field(
        default=False,
        description=(
            "The restored members were seen to form the cluster: a member that loses its data"
            " from then on is replaced as in a running cluster."
        ),
    )
    start_time: datetime | None = Field(default=None, description="When the rollback began.")
    completion_time: datetime | None = Field(default=None, description="When it completed.")
    message: str = Field(default="", max_length=1024, description="What was rolled back.")


class RecoveryPhase(StrEnum):
    FORCING = "Forcing"  # recorded before the survivor's pod is taken down
    RECOVERED = "Recovered"  # etcd showed the survivor alone in its member list


class QuorumLossRecoveryStatus(ApiModel):
    """FromSurvivor: the rebuild of the cluster from one surviving member, written by the step
    that starts it (Forcing) and the step that sees it done (Recovered), so an operator
    restarted in between resumes it and never forces a second start."""

    model_config = _LENIENT

    phase: str = Field(max_length=32, description="Forcing, then Recovered.")
    member: str = Field(
        max_length=63, description="The surviving member the cluster is rebuilt from."
    )
    member_id: str = Field(
        alias="memberID",
        pattern=_HEX_ID,
        description="Its etcd member ID (hex), kept by --force-new-cluster.",
    )
    lost_members: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Members whose data was lost; they come back as new members.",
    )
    message: str = Field(default="", max_length=1024, description="What was done and why.")
    started_at: datetime | None = Field(default=None, description="When the forced start began.")
    finished_at: datetime | None = Field(
        default=None, description="When etcd showed the survivor alone in its member list."
    )


class ReplacementStatus(ApiModel):
    """A member replaced on request (the etcd.operator.io/replace-member annotation)."""

    model_config = _LENIENT

    request: str = Field(
        max_length=253, description="The value of the annotation this replacement acts on."
    )
    member: str = Field(max_length=253, description="The name of the member replaced.")
    member_id: str = Field(
        alias="memberID",
        pattern=_HEX_ID,
        description=(
            "The etcd member ID (hex) being replaced; the replacement is done once it has left"
            " the member list and a fresh member of that name votes."
        ),
    )


class CorruptionCheckStatus(ApiModel):
    """The last comparison of the members' HashKV."""

    model_config = _LENIENT

    last_time: datetime = Field(description="When the members' hashes were last compared.")
    revision: int = Field(
        ge=0, description="The revision hashed.", json_schema_extra={"format": "int64"}
    )
    diverged: list[str] = Field(
        default_factory=list,
        max_length=9,
        description="Members whose hash differs from the majority's (replaced in turn).",
    )
    message: str = Field(default="", max_length=1024, description="The outcome, for humans.")


class EtcdClusterStatus(ApiModel):
    """The observed state of an etcd cluster."""

    model_config = _LENIENT

    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status describes."
    )
    phase: ClusterPhase | None = Field(
        default=None, description="A one-word summary; see conditions for the detail."
    )
    conditions: list[Condition] | None = conditions_field("Available, Progressing and Degraded.")
    replicas: int | None = Field(default=None, ge=0, description="Members of the cluster.")
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Members whose pods are ready."
    )
    selector: str | None = Field(
        default=None,
        description="Label selector of the member pods (for the scale subresource).",
    )
    members: list[MemberStatus] | None = Field(
        default=None,
        description="The etcd members, voters and learners.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    leader: str | None = Field(default=None, description="Name of the leader member.")
    cluster_id: str | None = Field(
        default=None, alias="clusterID", pattern=_HEX_ID, description="etcd cluster ID in hex."
    )
    current_version: str | None = Field(
        default=None,
        description="The etcd version all members run; during an upgrade, the oldest.",
    )
    client_endpoint: str | None = Field(
        default=None, description="URL clients inside the Kubernetes cluster connect to."
    )
    last_operation: LastOperation | None = Field(
        default=None, description="The last action the operator took, and how it went."
    )
    ca_rotation: CARotationStatus | None = Field(
        default=None, description="Mode Auto: the CA rotation's progress."
    )
    rollback: RollbackStatus | None = Field(
        default=None, description="The last in-place rollback to a backup, and its progress."
    )
    last_seen_revision: int | None = Field(
        default=None,
        ge=0,
        description=(
            "The highest etcd revision a member was seen to serve, updated only when status is"
            " written anyway: a lower bound of what a rollback or a recovery from a backup loses."
        ),
        json_schema_extra={"format": "int64"},
    )
    maintenance: MaintenanceStatus | None = Field(
        default=None, description="Backend quota, alarms, NOSPACE recovery, defragmentation."
    )
    quorum_loss_recovery: QuorumLossRecoveryStatus | None = Field(
        default=None,
        description="spec.recovery.quorumLoss FromSurvivor: the last rebuild from a survivor.",
    )
    downgrade_target: str | None = Field(
        default=None,
        alias="downgradeTarget",
        max_length=32,
        description=(
            "The target of the downgrade etcd has enabled (e.g. 3.5.0), as etcd reports it;"
            " recorded so that a member restarted while no member answers runs it."
        ),
    )
    corruption_check: CorruptionCheckStatus | None = Field(
        default=None, description="The last comparison of the members' HashKV."
    )
    replacement: ReplacementStatus | None = Field(
        default=None,
        description="The member replaced on request (etcd.operator.io/replace-member).",
    )
