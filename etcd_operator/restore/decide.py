"""The EtcdRestore controller's decision: observed state -> the next step (pure).

The order is fixed: verify the snapshot in a pod, record what it holds in status, remove the
verification pod, create the EtcdCluster (annotated with the restore's UID), wait for it to be
ready, check that it serves at least the snapshot's revision. Every fact comes from the world or
from status written at the step that made it true, so a round that dies half way is resumed by
the next one; the cluster is created only when none of that name exists, and one that exists
without this restore's annotation is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from etcd_operator.api.restore import RestorePhase


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    """What the verification found; recorded in status before anything is created."""

    revision: int
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class VerifyPod:
    """The verification pod as observed."""

    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
    deleting: bool = False
    # Succeeded: what its logs said (None when they could not be read as expected).
    facts: SnapshotFacts | None = None
    # Failed: why, from the step that failed (CamelCase reason, message).
    failure: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ClusterSeen:
    """An EtcdCluster of the restore's target name."""

    restored_by: str | None  # the restore UID it was annotated with at creation
    ready: bool  # phase Running with every member ready
    summary: str  # its phase, for messages


@dataclass(frozen=True, slots=True)
class RestoreObserved:
    uid: str
    cluster_name: str
    source: str  # where the snapshot is, for messages
    phase: RestorePhase
    verified: SnapshotFacts | None  # status: the snapshot passed and holds this
    cluster_recorded: bool  # status names the cluster: it was created by this restore
    source_exists: bool
    pod: VerifyPod | None
    cluster: ClusterSeen | None
    # The revision the cluster serves now; None when it could not be asked.
    served_revision: int | None = None
    # The source names an EtcdBackup that has no location yet: (pending, reason, message);
    # pending while the backup runs, else it never will.
    unresolved: tuple[bool, str, str] | None = None


class Reason(StrEnum):
    VERIFYING = "Verifying"
    VERIFIED = "Verified"
    CREATING_CLUSTER = "CreatingCluster"
    CLEANING_UP = "RemovingVerificationPod"
    WAITING_FOR_CLUSTER = "WaitingForCluster"
    RESTORED = "Restored"
    SNAPSHOT_NOT_FOUND = "SnapshotNotFound"
    VERIFICATION_FAILED = "VerificationFailed"
    CLUSTER_EXISTS = "ClusterExists"
    CLUSTER_DELETED = "ClusterDeleted"
    REVISION_BEHIND = "RevisionBehind"
    VERIFICATION_LOST = "VerificationLost"


@dataclass(frozen=True, slots=True)
class CreateVerifyPod:
    pass


@dataclass(frozen=True, slots=True)
class DeleteVerifyPod:
    pass


@dataclass(frozen=True, slots=True)
class RecordVerified:
    facts: SnapshotFacts


@dataclass(frozen=True, slots=True)
class CreateCluster:
    pass


@dataclass(frozen=True, slots=True)
class Wait:
    pass


@dataclass(frozen=True, slots=True)
class Succeed:
    pass


@dataclass(frozen=True, slots=True)
class Fail:
    # Whether the failure is the snapshot's (Verified=False) rather than the restore's.
    snapshot: bool


@dataclass(frozen=True, slots=True)
class Done:
    """The restore finished earlier (Succeeded or Failed): nothing more to do."""


Step = (
    CreateVerifyPod
    | DeleteVerifyPod
    | RecordVerified
    | CreateCluster
    | Wait
    | Succeed
    | Fail
    | Done
)


@dataclass(frozen=True, slots=True)
class RestoreDecision:
    step: Step
    phase: RestorePhase
    reason: str  # CamelCase, for the condition and the Event
    message: str


def _d(step: Step, phase: RestorePhase, reason: str, message: str) -> RestoreDecision:
    return RestoreDecision(step, phase, reason, message)


def decide_restore(o: RestoreObserved) -> RestoreDecision:
    if o.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED):
        return _d(Done(), o.phase, o.phase.value, "the restore has finished")
    if o.cluster is not None:
        return _follow(o, o.cluster)
    if o.cluster_recorded:
        return _d(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.CLUSTER_DELETED,
            f"EtcdCluster {o.cluster_name} was created by this restore and then deleted",
        )
    if o.verified is not None:
        if o.pod is not None:
            return _d(
                DeleteVerifyPod(),
                RestorePhase.RESTORING,
                Reason.CLEANING_UP,
                "the snapshot is verified; removing the verification pod (it mounts the source)",
            )
        return _d(
            CreateCluster(),
            RestorePhase.RESTORING,
            Reason.CREATING_CLUSTER,
            f"creating EtcdCluster {o.cluster_name} from the snapshot (revision"
            f" {o.verified.revision})",
        )
    return _verify(o)


def _verify(o: RestoreObserved) -> RestoreDecision:
    pod = o.pod
    if pod is None and o.unresolved is not None:
        pending, reason, message = o.unresolved
        if pending:
            return _d(Wait(), RestorePhase.PENDING, reason, message)
        return _d(
            Fail(snapshot=True), RestorePhase.FAILED, reason, f"{message}; nothing was created"
        )
    if pod is None:
        if not o.source_exists:
            return _d(
                Fail(snapshot=True),
                RestorePhase.FAILED,
                Reason.SNAPSHOT_NOT_FOUND,
                f"the snapshot source ({o.source}) does not exist; nothing was created",
            )
        return _d(
            CreateVerifyPod(),
            RestorePhase.VERIFYING,
            Reason.VERIFYING,
            f"verifying the snapshot at {o.source}",
        )
    if pod.phase == "Succeeded":
        if pod.facts is None:
            return _d(
                Fail(snapshot=True),
                RestorePhase.FAILED,
                Reason.VERIFICATION_FAILED,
                "the verification pod succeeded but its report could not be read",
            )
        return _d(
            RecordVerified(pod.facts),
            RestorePhase.VERIFYING,
            Reason.VERIFIED,
            f"the snapshot is intact (revision {pod.facts.revision})",
        )
    if pod.phase == "Failed":
        reason, message = pod.failure or (Reason.VERIFICATION_FAILED, "the verification failed")
        return _d(
            Fail(snapshot=True),
            RestorePhase.FAILED,
            reason,
            f"the snapshot at {o.source} was refused: {message}; nothing was created",
        )
    return _d(Wait(), RestorePhase.VERIFYING, Reason.VERIFYING, f"verifying {o.source}")


def _follow(o: RestoreObserved, cluster: ClusterSeen) -> RestoreDecision:
    if cluster.restored_by != o.uid:
        return _d(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.CLUSTER_EXISTS,
            f"an EtcdCluster named {o.cluster_name} already exists and was not created by this"
            " restore; it is left alone and nothing was restored",
        )
    if o.pod is not None:
        return _d(DeleteVerifyPod(), RestorePhase.RESTORING, Reason.CLEANING_UP, "removing the pod")
    if not cluster.ready or o.served_revision is None:
        return _d(
            Wait(),
            RestorePhase.RESTORING,
            Reason.WAITING_FOR_CLUSTER,
            f"waiting for EtcdCluster {o.cluster_name} to be ready ({cluster.summary})",
        )
    if o.verified is None:  # status lost what the verification found: nothing to check against
        return _d(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.VERIFICATION_LOST,
            "status no longer records the snapshot's revision; the cluster cannot be checked",
        )
    wanted = o.verified.revision
    if o.served_revision < wanted:
        return _d(
            Fail(snapshot=False),
            RestorePhase.FAILED,
            Reason.REVISION_BEHIND,
            f"EtcdCluster {o.cluster_name} serves revision {o.served_revision}, below the"
            f" snapshot's {wanted}",
        )
    return _d(
        Succeed(),
        RestorePhase.SUCCEEDED,
        Reason.RESTORED,
        f"EtcdCluster {o.cluster_name} serves the snapshot (revision {o.served_revision} >="
        f" {wanted})",
    )
