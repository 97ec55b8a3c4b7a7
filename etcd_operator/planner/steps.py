"""The steps the planner can ask the shell to take, and why it chose one.

Each step is one idempotent action (or a small group the shell repeats until complete, e.g.
`Bootstrap`). The shell applies exactly one step per round with an exhaustive `match`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from etcd_operator.naming import PLAINTEXT, MemberTLS
from etcd_operator.planner.model import RollbackPhase


class ClusterState(StrEnum):
    """`--initial-cluster-state`."""

    NEW = "new"
    EXISTING = "existing"


@dataclass(frozen=True, slots=True)
class InitialCluster:
    """The `--initial-cluster*` flags a new pod starts with. Ignored by etcd when the data
    directory already holds a member, so they are harmless for restarts."""

    state: ClusterState
    peers: tuple[tuple[str, str], ...]  # (name, peer URL), one pair per URL
    token: str

    def flag(self) -> str:
        """The `--initial-cluster` value: `name=url,name=url`."""
        return ",".join(f"{name}={url}" for name, url in self.peers)


class Reason(StrEnum):
    """Closed vocabulary for Events and `status.lastOperation.reason`."""

    # actions
    BOOTSTRAP = "Bootstrap"
    BOOTSTRAP_RESUME = "BootstrapResume"
    BOOTSTRAPPED = "Bootstrapped"
    RESTORE_POD = "RestorePod"
    START_LEARNER = "StartLearner"
    SCALE_OUT = "ScaleOut"
    SCALE_IN = "ScaleIn"
    PROMOTE = "PromoteLearner"
    TRANSFER_LEADERSHIP = "TransferLeadership"
    REPLACE_LOST_MEMBER = "ReplaceLostMember"
    REMOVE_STRAY_LEARNER = "RemoveStrayLearner"
    DELETE_STRAY_POD = "DeleteStrayPod"
    DELETE_STALE_VOLUME = "DeleteStaleVolume"
    DELETE_SCALED_VOLUME = "DeleteScaledVolume"
    RECORD_VOLUME = "RecordVolume"
    RETIRE_VOLUME = "RetireVolume"
    UPGRADE = "Upgrade"
    ROLLING_RESTART = "RollingRestart"
    UPDATE_PEER_URL = "UpdatePeerURL"
    TLS_RESTART = "TLSRestart"
    REPLACE_MEMBER = "ReplaceMember"
    EXPAND_VOLUME = "ExpandVolume"
    ENABLE_AUTH = "EnableAuth"
    DISABLE_AUTH = "DisableAuth"
    # waiting: nothing to do but observe again soon
    BOOTSTRAPPING = "Bootstrapping"
    POD_TERMINATING = "PodTerminating"
    VOLUME_TERMINATING = "VolumeTerminating"
    VOLUME_PENDING = "VolumePending"
    MEMBER_UNHEALTHY = "MemberUnhealthy"
    LEARNER_CATCHING_UP = "LearnerCatchingUp"
    NO_LEADER = "NoLeader"
    NO_TRANSFER_TARGET = "NoTransferTarget"
    MEMBER_CATCHING_UP = "MemberCatchingUp"
    PEERS_WITHOUT_TLS = "PeersWithoutTLS"
    # degraded: a human should look; nothing destructive happens
    QUORUM_LOST = "QuorumLost"
    CLUSTER_LOST = "ClusterLost"
    MEMBER_DATA_LOST = "MemberDataLost"
    MEMBER_CRASH_LOOPING = "MemberCrashLooping"
    STALE_VOLUME = "StaleVolume"
    FOREIGN_VOLUME = "ForeignVolume"
    BOOTSTRAP_INCONSISTENT = "BootstrapInconsistent"
    FOREIGN_MEMBER = "ForeignMember"
    DUPLICATE_MEMBER = "DuplicateMember"
    ALARM_ACTIVE = "AlarmActive"
    UPGRADE_BLOCKED = "UpgradeBlocked"
    UPGRADE_STALLED = "UpgradeStalled"
    RESTART_WOULD_LOSE_DATA = "RestartWouldLoseData"
    VOLUME_EXPANSION_UNSUPPORTED = "VolumeExpansionUnsupported"
    AUTH_SECRET_INVALID = "AuthSecretInvalid"
    AUTH_REJECTED = "AuthRejected"
    INVALID_SPEC = "InvalidSpec"
    INVALID_OBSERVATION = "InvalidObservation"
    # steady states
    IN_SYNC = "InSync"
    PAUSED = "Paused"
    DELETING = "Deleting"
    # in-place rollback to a backup, and quorum loss FromLatestBackup (branch rollback)
    ROLLBACK_VERIFY = "RollbackVerify"
    ROLLBACK_VERIFYING = "RollbackVerifying"
    ROLLBACK_STARTED = "RollbackStarted"
    ROLLBACK_STOP = "RollbackStop"
    ROLLBACK_RESTORE = "RollbackRestore"
    ROLLBACK_RESTORING = "RollbackRestoring"
    ROLLBACK_MEMBERS_SEEN = "RollbackMembersSeen"
    ROLLBACK_COMPLETED = "RollbackCompleted"
    ROLLBACK_REFUSED = "RollbackRefused"
    # space, alarms and defragmentation (issue 13, part `space`)
    COMPACT = "Compact"  # action: NOSPACE recovery's first step
    DEFRAGMENT = "Defragment"  # action: one member, followers first, the leader last
    SPACE_RECOVERED = "SpaceRecovered"  # action: the NOSPACE alarm disarmed
    NO_SPACE = "NoSpace"  # degraded: live data alone fills the quota
    # quorum loss: FromSurvivor (branch survivor)
    FORCE_NEW_CLUSTER = "ForceNewCluster"
    FORCED_START_DONE = "ForcedStartDone"
    FORCING_NEW_CLUSTER = "ForcingNewCluster"
    # issue 13, downgrade: one minor down with etcd's downgrade API (planner/downgrade.py)
    ENABLE_DOWNGRADE = "EnableDowngrade"
    CANCEL_DOWNGRADE = "CancelDowngrade"
    DOWNGRADE = "Downgrade"  # a member restarted with the older minor
    DOWNGRADE_PENDING = "DowngradePending"  # waiting: etcd is moving its versions
    DOWNGRADE_REFUSED = "DowngradeRefused"  # degraded: etcd's validate refused the target
    # replace: a chosen member, storage growth by replacement (issue 13)
    REPLACE_REQUESTED = "ReplaceRequested"
    REPLACE_CHOSEN_MEMBER = "ReplaceChosenMember"
    REPLACE_REFUSED = "ReplaceRefused"
    GROW_BY_REPLACEMENT = "GrowByReplacement"
    REPLACE_CORRUPT_MEMBER = "ReplaceCorruptMember"
    CORRUPTION_SUSPECTED = "CorruptionSuspected"
    # etcd's CORRUPT alarm (planner/corrupt_alarm.py)
    REPLACE_ALARMED_MEMBER = "ReplaceAlarmedMember"  # action: the member CORRUPT names goes
    CORRUPT_DISARMED = "CorruptDisarmed"  # action: CORRUPT disarmed, its member is gone
    CORRUPT_ALARM = "CorruptAlarm"  # degraded: CORRUPT that the operator may not resolve


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Create the PVCs and pods of all initial members (state=new, static initial cluster).

    `restore`: each pod restores `spec.bootstrap.restore`'s snapshot into its empty data
    directory (as that member of `initial_cluster`) before etcd first starts."""

    members: tuple[str, ...]
    initial_cluster: InitialCluster
    version: str
    restore: bool = False
    tls: MemberTLS = PLAINTEXT  # the schemes its pods serve


@dataclass(frozen=True, slots=True)
class CreatePod:
    """Create `member`'s pod on the claim `claim` (created first when missing).

    `member_id` is the member whose raft log the volume must hold (member-init refuses to start
    etcd otherwise); None for a member that has never started, whose volume may be empty.
    `restore`: an initial member of a cluster bootstrapped from a snapshot (see `Bootstrap`);
    never for a member that joins a running cluster."""

    member: str
    initial_cluster: InitialCluster
    version: str
    claim: str = ""  # "" = the member's default claim name
    member_id: int | None = None
    restore: bool = False
    tls: MemberTLS = PLAINTEXT  # the schemes its pods serve


@dataclass(frozen=True, slots=True)
class AddLearner:
    """`MemberAdd(peer_urls=[peer_url], is_learner=True)`."""

    member: str
    peer_url: str


@dataclass(frozen=True, slots=True)
class PromoteLearner:
    member_id: int
    member: str


@dataclass(frozen=True, slots=True)
class MoveLeader:
    """`MoveLeader` sent to the current leader `from_id`."""

    from_id: int
    to_id: int
    to_member: str


@dataclass(frozen=True, slots=True)
class RemoveMember:
    member_id: int
    member: str  # our name for it, or its etcd name when it is not one of ours


@dataclass(frozen=True, slots=True)
class DeletePod:
    member: str


@dataclass(frozen=True, slots=True)
class DeletePVC:
    member: str
    claim: str = ""  # "" = the member's default claim name


@dataclass(frozen=True, slots=True)
class RecordVolume:
    """Record on the claim that it holds member `member_id`'s raft log (and this cluster's UID).

    The record outlives every pod and every answer from etcd: from then on a pod for that member
    starts only on that log, and the cluster counts as formed."""

    member: str
    claim: str
    member_id: int


@dataclass(frozen=True, slots=True)
class RetireVolume:
    """Record on the claim that member `member_id` was removed: its volume is kept only by the
    retention policy and never started again."""

    member: str
    claim: str
    member_id: int


@dataclass(frozen=True, slots=True)
class UpgradeMember:
    """Replace `member`'s pod with one running `to_version`, keeping its PVC.

    `member_id` is None when no member answered (a pod that cannot start is rolled back
    while quorum is lost, e.g. in a one-member cluster). The same step restarts a member whose
    pod predates the current spec (`from_version == to_version`).

    `evict`: take the pod down through the Eviction API, so that the PodDisruptionBudget
    arbitrates between this restart and any other voluntary disruption (a node drain): a
    refusal means "not now". False only where the planner accepted the member's absence
    although the budget would refuse it: the restart of a 1- or 2-voter cluster (a short
    outage, see docs/upgrades.md) and the replacement of a pod that cannot run etcd at all
    (it serves nothing); the shell then deletes the pod directly."""

    member: str
    member_id: int | None
    from_version: str
    to_version: str
    evict: bool = True
    tls: MemberTLS = PLAINTEXT  # the schemes its pods serve


@dataclass(frozen=True, slots=True)
class UpdatePeerURL:
    """`MemberUpdate`: member `member_id` is reached by its peers at `peer_url` from now on (the
    same address over https). Its pod still serves the old scheme until it is restarted."""

    member: str
    member_id: int
    peer_url: str


@dataclass(frozen=True, slots=True)
class ExpandVolume:
    """Grow `member`'s claim (named `claim`) to `spec.storage.size` (its StorageClass allows
    expansion)."""

    member: str
    claim: str


@dataclass(frozen=True, slots=True)
class EnableAuth:
    """Give user `root` (role `root`) the root Secret's password, then enable authentication.

    Each call is idempotent, and etcd's auth status says whether the last one happened, so a
    step cut short is simply taken again. The password is never part of the step: the shell
    reads it from the Secret (creating the generated one first)."""


@dataclass(frozen=True, slots=True)
class DisableAuth:
    """Disable authentication (users and roles stay in etcd)."""


# --- space, alarms and defragmentation (issue 13, part `space`) ----------------------------


class DefragTrigger(StrEnum):
    """Why a member is defragmented (recorded in `status.maintenance.lastDefrag`)."""

    NO_SPACE = "NoSpace"
    THRESHOLD = "Threshold"
    SCHEDULE = "Schedule"


@dataclass(frozen=True, slots=True)
class Compact:
    """Compact etcd's key history at its current revision, physically (the shell reads the
    revision). Compacting again at a compacted revision changes nothing."""


@dataclass(frozen=True, slots=True)
class Defragment:
    """Defragment one member (it serves nothing while it runs). `new_run`: this member starts
    a new defragmentation run in status rather than joining the one recorded."""

    member_id: int
    member: str
    trigger: DefragTrigger
    new_run: bool = False


@dataclass(frozen=True, slots=True)
class DisarmAlarm:
    """Deactivate the `alarm` alarms ("NOSPACE" or "CORRUPT") raised for `member_ids`: NOSPACE
    once space was freed, CORRUPT once the member it names has left the member list."""

    member_ids: tuple[int, ...]
    alarm: str = "NOSPACE"


@dataclass(frozen=True, slots=True)
class MarkBootstrapped:
    """The cluster has formed: status records its cluster ID (`status.clusterID`), and from then
    on `Observed.bootstrapped` is true and the cluster is never bootstrapped again."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do now; update status and observe again soon."""

    reason: Reason


@dataclass(frozen=True, slots=True)
class Degraded:
    """The planner will not act; status and an Event should tell a human why."""

    reason: Reason


@dataclass(frozen=True, slots=True)
class Paused:
    pass


@dataclass(frozen=True, slots=True)
class InSync:
    pass


@dataclass(frozen=True, slots=True)
class Done:
    """The resource is being deleted: the shell's finalizer takes over."""


# In-place rollback to a backup (branch rollback).
@dataclass(frozen=True, slots=True)
class VerifyBackup:
    """Start the pod that checks EtcdBackup `backup`'s snapshot (sha256, `etcdutl snapshot
    restore` into scratch space, its revision) before anything of the cluster is touched."""

    backup: str
    backup_uid: str


@dataclass(frozen=True, slots=True)
class RecordRollback:
    """Write `status.rollback` at `phase`: the durable record each later round resumes from.
    Stopping is recorded before the first member stops, Restoring once every old pod is gone and
    every old claim retired, Completed once the restored members formed the cluster."""

    phase: RollbackPhase
    backup: str
    backup_uid: str
    epoch: int
    cause: str = "Requested"
    revision: int | None = None  # the snapshot's
    sha256: str | None = None
    from_revision: int | None = None  # the highest revision a member was seen to serve
    # Restoring: restored members seen running etcd, and whether they formed the cluster
    # (RollbackRecord.started/formed); kept as recorded by later phases' steps.
    started: tuple[str, ...] = ()
    formed: bool = False


# quorum loss: FromSurvivor (branch survivor)
@dataclass(frozen=True, slots=True)
class ForceNewCluster:
    """Rebuild a cluster that lost a majority of its voters for good from the surviving member
    `member`: record the start in status, take its pod down, then start it once with
    `--force-new-cluster` (etcd keeps its data and ID and makes it the only member). Repeated
    until its flagged pod exists; never taken while such a pod exists."""

    member: str
    member_id: int
    lost: tuple[str, ...]  # members whose data is gone, for status and messages
    version: str
    initial_cluster: InitialCluster
    claim: str = ""
    tls: MemberTLS = PLAINTEXT  # the schemes its pod serves


@dataclass(frozen=True, slots=True)
class EndForcedStart:
    """etcd shows `member` alone: record the rebuild done in status, then delete its pod if it
    still carries `--force-new-cluster` (the heal rules recreate it without the flag)."""

    member: str
    member_id: int


# replace: a chosen member (issue 13)
@dataclass(frozen=True, slots=True)
class RecordReplacement:
    """Record in status that request `request` (the `etcd.operator.io/replace-member`
    annotation's value) replaces member `member_id`, named `member`. Written before the member
    is removed, so that a restarted operator finishes this replacement and never starts a
    second one for the same request."""

    request: str
    member: str
    member_id: int


# issue 13, downgrade
@dataclass(frozen=True, slots=True)
class EnableDowngrade:
    """`Downgrade(VALIDATE, version)` then `Downgrade(ENABLE, version)`: etcd lowers the cluster
    version, then every member its storage version, to `version`'s minor. etcd's refusal is
    reported with its reason and nothing changes; one already enabled counts as done."""

    version: str


@dataclass(frozen=True, slots=True)
class CancelDowngrade:
    """`Downgrade(CANCEL)`, sent to `member` (one that reports the downgrade, so knows the API:
    an etcd 3.5 member may never answer it)."""

    member_id: int
    member: str


Action = (
    Bootstrap
    | CreatePod
    | AddLearner
    | PromoteLearner
    | MoveLeader
    | RemoveMember
    | DeletePod
    | DeletePVC
    | UpgradeMember
    | UpdatePeerURL
    | RecordVolume
    | RetireVolume
    | ExpandVolume
    | EnableAuth
    | DisableAuth
    | VerifyBackup
    | RecordRollback
    | Compact
    | Defragment
    | DisarmAlarm
    | ForceNewCluster
    | EndForcedStart
    | EnableDowngrade
    | CancelDowngrade
)
"""Steps that change the world (the shell calls Kubernetes or etcd, posts an Event and records
`status.lastOperation`)."""

Report = MarkBootstrapped | Wait | Degraded | Paused | InSync | Done | RecordReplacement
"""Steps that change nothing but status."""

Step = Action | Report


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    reason: Reason
    message: str


def wait(reason: Reason, message: str) -> Decision:
    """Nothing to do until the world changes: observe again soon."""
    return Decision(Wait(reason), reason, message)


def degraded(reason: Reason, message: str) -> Decision:
    """The planner will not act; a human should read `message`."""
    return Decision(Degraded(reason), reason, message)


def action_of(step: Step) -> Action | None:
    """The change `step` makes to the world, or None when it only reports (status only)."""
    match step:
        case (
            Bootstrap()
            | CreatePod()
            | AddLearner()
            | PromoteLearner()
            | MoveLeader()
            | RemoveMember()
            | DeletePod()
            | DeletePVC()
            | UpgradeMember()
            | UpdatePeerURL()
            | RecordVolume()
            | RetireVolume()
            | ExpandVolume()
            | EnableAuth()
            | DisableAuth()
            | VerifyBackup()
            | RecordRollback()
            | Compact()
            | Defragment()
            | DisarmAlarm()
            | ForceNewCluster()
            | EndForcedStart()
            | EnableDowngrade()
            | CancelDowngrade()
        ):
            return step
        case (
            MarkBootstrapped()
            | Wait()
            | Degraded()
            | Paused()
            | InSync()
            | Done()
            | RecordReplacement()
        ):
            return None
        case _:
            assert_never(step)


def acts(step: Step) -> bool:
    """Whether the shell changes the world for `step` (and says so in an Event)."""
    return action_of(step) is not None


def is_disruptive(step: Step) -> bool:
    """Whether the step can take away a member, data or leadership (never while degraded)."""
    match step:
        # A member update leaves its member unreachable over the new scheme until its restart.
        case (
            RemoveMember()
            | DeletePod()
            | DeletePVC()
            | UpgradeMember()
            | MoveLeader()
            | UpdatePeerURL()
            | Defragment()  # its member serves nothing while it runs
            | ForceNewCluster()
            | EndForcedStart()
        ):
            return True
        case (
            Bootstrap()
            | CreatePod()
            | AddLearner()
            | PromoteLearner()
            | RecordVolume()
            | RetireVolume()
            | ExpandVolume()
            | EnableAuth()
            | DisableAuth()
            | VerifyBackup()
            | RecordRollback()
            | EnableDowngrade()
            | CancelDowngrade()
            | Compact()
            | DisarmAlarm()
            | MarkBootstrapped()
            | Wait()
            | Degraded()
            | Paused()
            | InSync()
            | Done()
            | RecordReplacement()
        ):
            return False
        case _:
            assert_never(step)
