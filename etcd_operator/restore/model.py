"""What the EtcdRestore decision sees and may decide (pure values): the observed state, the
closed set of steps, the reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from etcd_operator.api.restore import DrillResult, RestorePhase


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
    created: datetime | None = None  # its creationTimestamp: the ready timeout counts from it
    deleting: bool = False  # its deletionTimestamp is set


@dataclass(frozen=True, slots=True)
class DrillExpected:
    """What a drill checks the throwaway cluster against (recorded when the snapshot is)."""

    revision: int
    keys: int | None  # None: the backup could not count them; the revision alone is checked
    source_cluster: str | None = None


@dataclass(frozen=True, slots=True)
class DrillSeen:
    """A drill (`spec.drill`), from status and the throwaway cluster."""

    # Status: the result once recorded (result, reason, message), and the expectations.
    recorded: tuple[DrillResult, str, str] | None = None
    expected: DrillExpected | None = None
    # This round: what the source promises (for RecordVerified), and what the cluster holds
    # at the expected revision (None: not read; `keys_error`: etcd refused to count).
    promised: DrillExpected | None = None
    source_cluster: str | None = None  # the named EtcdBackup's cluster, as soon as it is read
    served_keys: int | None = None
    keys_error: str | None = None


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
    drill: DrillSeen | None = None  # None: an ordinary restore
    now: datetime | None = None  # for the ready timeout (None: never times out)
    ready_timeout: timedelta = timedelta(minutes=10)


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
    CLUSTER_NOT_READY = "ClusterNotReady"
    DRILL_PASSED = "DrillPassed"
    DRILL_FAILED = "DrillFailed"
    KEY_COUNT_MISMATCH = "KeyCountMismatch"
    DELETING_DRILL_CLUSTER = "DeletingDrillCluster"


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
class RecordDrill:
    """Write the drill's result (before its cluster is deleted, so it is never lost)."""

    result: DrillResult
    served_revision: int | None = None
    served_keys: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteCluster:
    """Delete the drill's throwaway cluster (its result is recorded)."""


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
    | RecordDrill
    | DeleteCluster
    | Done
)


@dataclass(frozen=True, slots=True)
class RestoreDecision:
    step: Step
    phase: RestorePhase
    reason: str  # CamelCase, for the condition and the Event
    message: str


def decision(step: Step, phase: RestorePhase, reason: str, message: str) -> RestoreDecision:
    return RestoreDecision(step, phase, reason, message)
