"""What the shell observed about one EtcdCluster: the planner's only input.

Every value is plain data read from the world (the custom resource, its status, pods, PVCs and
the etcd member list) so that the planner can be tested with any combination of it. A pod or a
PVC that does not exist is simply absent from its mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from enum import StrEnum

from etcd_operator.naming import PLAINTEXT, MemberTLS


class PvcRetention(StrEnum):
    """`spec.pvcRetentionPolicy.whenScaled`, as in StatefulSets."""

    RETAIN = "Retain"
    DELETE = "Delete"


class PodPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class ClusterRef:
    name: str
    namespace: str
    uid: str


@dataclass(frozen=True, slots=True)
class DesiredSpec:
    replicas: int
    version: str
    paused: bool = False
    deleting: bool = False  # metadata.deletionTimestamp is set
    pvc_when_scaled: PvcRetention = PvcRetention.RETAIN
    # `spec.storage.emptyDir`: a member's data lives and dies with its pod, so restarting a
    # member means replacing it (remove, re-add as a learner) and a lost pod is a lost member.
    empty_dir: bool = False
    # `spec.bootstrap.restore`: the initial members start from a snapshot (restored before etcd
    # first starts); members added later join empty and copy the data from the cluster.
    restore: bool = False
    # `spec.tls`: members talk to each other over TLS (peer), serve clients over TLS (client),
    # and with `allowPlaintext` serve plaintext clients beside TLS ones.
    peer_tls: bool = False
    client_tls: bool = False
    client_plaintext: bool = False
    # `spec.recovery.quorumLoss`: Manual, FromSurvivor or FromLatestBackup.
    quorum_loss: str = "Manual"

    @property
    def member_tls(self) -> MemberTLS:
        """What a member of a cluster that has always had this spec serves."""
        return MemberTLS(
            peer=self.peer_tls,
            client=self.client_tls,
            client_plaintext=self.client_tls and self.client_plaintext,
        )


@dataclass(frozen=True, slots=True)
class EtcdMember:
    """One entry of the etcd member list."""

    id: int
    name: str  # '' until the member has started and published its name
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def started(self) -> bool:
        return self.name != ""

    @property
    def peer_https(self) -> bool:
        """Its peers reach it over TLS: the scheme of its registered peer URLs, which only
        `MemberUpdate` changes, is the durable record of which listener it must serve."""
        return bool(self.peer_urls) and all(u.startswith("https://") for u in self.peer_urls)


@dataclass(frozen=True, slots=True)
class MemberHealth:
    """What one member said about itself (endpoint health and status)."""

    reachable: bool
    healthy: bool
    version: str | None = None
    raft_index: int = 0
    applied_index: int = 0
    db_size: int = 0
    is_leader: bool = False
    alarms: tuple[str, ...] = ()
    revision: int = 0  # the revision it serves (its answer's header)
    # etcd >= 3.6 only (None from older members): the version of the member's data, which
    # follows the cluster version (down to the target once a downgrade is enabled), and the
    # target of the downgrade etcd has enabled, as this member knows it.
    storage_version: str | None = None
    downgrade_target: str | None = None
    db_size_in_use: int = 0  # bytes of the backend holding live data (the rest is free pages)


@dataclass(frozen=True, slots=True)
class PodState:
    """One existing pod of the cluster, keyed by member name in `Observed.pods`."""

    phase: PodPhase = PodPhase.RUNNING
    ready: bool = True
    deleting: bool = False  # metadata.deletionTimestamp is set
    version: str | None = None  # the etcd version of its image
    restart_count: int = 0
    crash_looping: bool = False
    # Why the etcd container cannot even start, e.g. ErrImagePull / ImagePullBackOff for a
    # version whose image does not exist, or CreateContainerConfigError; None otherwise.
    start_error: str | None = None
    # The data directory is empty although the member had started, or it belongs to another
    # cluster or member: the pod must never run as that member again.
    data_lost: bool = False
    created_at: datetime | None = None
    # For pods created with initial-cluster-state=new: the names of the static initial cluster
    # (recorded on the pod by the shell). Empty for pods that joined an existing cluster.
    bootstrap_members: tuple[str, ...] = ()
    # The pod was built from an older `spec` (pod template, etcd tuning, image, emptyDir size)
    # than the current one: a rollout restarts it, one member at a time. Decided by the shell
    # (resources.pod.pod_outdated), never for a difference in version (the upgrade rules own it).
    outdated: bool = False
    # What it serves (from its etcd flags), and whether it holds the peer certificate and trusts
    # the peer CA, so that it can reach members that serve peers over https.
    tls: MemberTLS = PLAINTEXT
    peer_tls: bool = False
    # Built with `--force-new-cluster` (its annotation records it): etcd rewrites the
    # membership to this member alone each time it starts so, until the pod is rebuilt.
    forced: bool = False


@dataclass(frozen=True, slots=True)
class PvcState:
    """One existing claim labelled as a member's of this cluster's name.

    The records below are written on the claim by the operator and travel with the data: they,
    not whether etcd answers now, say whose data a volume holds."""

    bound: bool = True
    deleting: bool = False
    claim: str = ""  # the claim's name; "" = the member's default claim name
    # The EtcdCluster UID recorded on the claim; None on claims made before records existed. A
    # claim with another UID belongs to an earlier cluster of the same name: never ours to use.
    cluster_uid: str | None = None
    member_id: int | None = None  # the member whose raft log it holds, once recorded
    retired: bool = False  # its member was removed; kept only by the retention policy
    # Its requested size is below `spec.storage.size`: the claim should grow.
    undersized: bool = False


@dataclass(frozen=True, slots=True)
class AuthState:
    """etcd authentication: what the spec asks and what etcd and the root Secret say."""

    wanted: bool = False  # spec.auth.enabled
    # etcd's own record (AuthStatus, or its refusal of a call, which only an etcd enforcing auth
    # makes); None when no member answered either way.
    enabled: bool | None = None
    secret: str = ""  # the Secret holding root's password, named in messages
    # Why root's password cannot be read (the Secret or its `password` key is missing); None
    # when it was read, need not be, or is the operator's to create (the generated Secret).
    secret_problem: str | None = None
    # etcd refused root's password from the Secret; None otherwise.
    rejected: str | None = None


class RollbackPhase(StrEnum):
    """`status.rollback.phase`: how far an in-place rollback got (durable, in status)."""

    STOPPING = "Stopping"  # recorded before any member is stopped
    RESTORING = "Restoring"  # every member pod gone and every old claim retired
    COMPLETED = "Completed"  # the members restored from the snapshot formed the cluster


@dataclass(frozen=True, slots=True)
class RollbackRequest:
    """`spec.rollback` (or the quorum-loss recovery choosing the newest backup)."""

    backup: str
    # `confirm` names this cluster and this backup (admission checks only its shape).
    confirmed: bool = True
    allow_other_cluster: bool = False
    cause: str = "Requested"  # or "QuorumLoss"


@dataclass(frozen=True, slots=True)
class BackupFacts:
    """The requested EtcdBackup as read now."""

    name: str
    uid: str = ""
    phase: str = "Succeeded"  # its status.phase ("" when it has none yet)
    cluster_name: str = ""  # the EtcdCluster it was taken of (its spec.clusterName)
    # Why this operator cannot read the snapshot it records; None when it can.
    unreadable: str | None = None
    revision: int | None = None
    completed_at: datetime | None = None
    # The UID of the EtcdCluster it was taken of; None: taken before backups recorded it.
    cluster_uid: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotCheck:
    """The pod verifying the requested backup's snapshot (sha256, etcd's own restore check)."""

    finished: bool = False
    ok: bool = False
    revision: int | None = None
    sha256: str | None = None
    problem: str = ""  # why it failed, for the refusal's message


@dataclass(frozen=True, slots=True)
class RollbackRecord:
    """`status.rollback` as the last round wrote it."""

    phase: RollbackPhase
    backup: str
    backup_uid: str = ""
    epoch: int = 1
    _: KW_ONLY  # what follows is named: two branches once filled the same positions
    # The spec.rollback request done before a quorum-loss recovery rolled back to another
    # backup (the record now names that one): done, never to be repeated.
    requested: str | None = None
    requested_uid: str = ""
    # Restoring, this epoch only (a new Stopping record starts empty): the restored members
    # seen running etcd, and whether one was seen healthy (a quorum of them formed the cluster).
    # Status alone records this for emptyDir members, whose pods take their data with them.
    started: tuple[str, ...] = ()
    formed: bool = False

    def done(self) -> tuple[tuple[str, str], ...]:
        """(backup, UID) of the requests this record has carried out: the backup rolled back
        to and, after a quorum-loss recovery, the one spec.rollback was rolled back to before."""
        if self.requested is None:
            return ((self.backup, self.backup_uid),)
        return ((self.backup, self.backup_uid), (self.requested, self.requested_uid))


@dataclass(frozen=True, slots=True)
class RollbackState:
    request: RollbackRequest | None = None
    backup: BackupFacts | None = None  # None: the requested backup does not exist
    check: SnapshotCheck | None = None  # None: no verification pod for the requested backup
    record: RollbackRecord | None = None
    # spec.recovery.quorumLoss FromLatestBackup, read while no member answers: the newest
    # Succeeded backup of this cluster (`backup` and `check` are then about it).
    recovery: RollbackRequest | None = None
    # status.lastSeenRevision: the highest revision a member was seen to serve (how much
    # history a rollback loses, when no member answers any more).
    last_seen_revision: int | None = None
    # FromLatestBackup with no backup of this cluster: the Succeeded backups it skipped as
    # taken of an earlier EtcdCluster of the same name (another UID), for the message.
    earlier: tuple[BackupFacts, ...] = ()


# --- space, alarms and defragmentation (issue 13, part `space`) ----------------------------

DEFAULT_QUOTA_BYTES = 2 * 1024**3
"""etcd's --quota-backend-bytes when the spec sets none."""


@dataclass(frozen=True, slots=True)
class DefragPolicy:
    """`spec.maintenance.defrag`: when to defragment members beyond NOSPACE recovery."""

    schedule: str | None = None  # cron expression (UTC)
    threshold: float | None = None  # free fraction of a member's backend that triggers it
    min_db_size: int = 64 * 1024**2  # members with a smaller backend are left alone


@dataclass(frozen=True, slots=True)
class DefragRun:
    """`status.maintenance.lastDefrag`: the last run, written at each Defragment step."""

    trigger: str  # a DefragTrigger value
    started: datetime
    members: tuple[str, ...] = ()  # defragmented so far, in order


@dataclass(frozen=True, slots=True)
class SpaceState:
    """Alarms, quota and defragmentation: etcd's alarm list and what status recorded."""

    # etcd's replicated alarm list: (member id, "NOSPACE" | "CORRUPT" | ...).
    alarms: tuple[tuple[int, str], ...] = ()
    quota: int = DEFAULT_QUOTA_BYTES
    defrag: DefragPolicy | None = None
    last_defrag: DefragRun | None = None
    # status.maintenance.noSpace: the history was compacted during the current NOSPACE
    # alarm, at this time, when the largest member's backend held `db_size_before` bytes.
    compacted_at: datetime | None = None
    db_size_before: int = 0
    # The cluster's revision at that compaction (None: not recorded). A cluster now past it
    # took writes since, so the alarm was disarmed in between: the record is stale.
    compacted_revision: int | None = None
    created: datetime | None = None  # the EtcdCluster's creation: a schedule's first base


@dataclass(frozen=True, slots=True)
class LocalView:
    """What one member said about itself while no quorum answered: its own (serializable)
    member list, from its log, and its raft position (Maintenance.Status, served without a
    quorum). Keyed by the name of the pod it answered in."""

    member_id: int
    members: tuple[EtcdMember, ...]
    raft_term: int = 0
    raft_index: int = 0
    applied_index: int = 0


@dataclass(frozen=True, slots=True)
class ForcedStart:
    """`status.quorumLossRecovery`: a rebuild from `member` was started (written before its
    pod is taken down) and whether etcd was seen with it alone (`done`)."""

    member: str
    member_id: int
    done: bool = False


@dataclass(frozen=True, slots=True)
class ReplacementRecord:
    """status.replacement: the request acted on, and the member it replaces (by ID, so that
    the fresh member that takes the name is never mistaken for the one to remove)."""

    request: str
    member: str
    member_id: int


@dataclass(frozen=True, slots=True)
class KvHash:
    """One member's HashKV at a revision: members agree on `hash` for the same revision and
    compact revision, unless one's data diverged."""

    revision: int
    compact_revision: int
    hash: int


@dataclass(frozen=True, slots=True)
class Observed:
    cluster: ClusterRef
    generation: int
    spec: DesiredSpec
    # status: the cluster formed once. Once true the operator never bootstraps again: a wiped
    # cluster would otherwise come back empty and silently lose its data.
    bootstrapped: bool
    # The member list as one reachable member sees it; None when no member answered.
    members: tuple[EtcdMember, ...] | None
    # The peer URL of every name the cluster may use, ordinals 0..MAX_REPLICAS-1, supplied by
    # the shell (etcd_operator.naming owns DNS names and the cluster domain). Members are
    # matched to names by peer URL, since an unstarted member has no name yet.
    expected_peer_urls: Mapping[str, str]
    member_health: Mapping[int, MemberHealth] = field(default_factory=dict)
    leader_id: int | None = None
    pods: Mapping[str, PodState] = field(default_factory=dict)
    # The claim each member name uses now (see planner.volumes.current_claims): never foreign,
    # never retired.
    pvcs: Mapping[str, PvcState] = field(default_factory=dict)
    # status: the etcd version the cluster last ran; used to start a member when no running
    # member can tell (None before bootstrap).
    status_version: str | None = None
    # When the shell observed this (for "stuck for too long" rules); None in most tests.
    now: datetime | None = None
    # Every other claim labelled with this cluster's name, by claim name: retired volumes of
    # removed members, and claims of an earlier cluster of the same name (another UID).
    other_claims: Mapping[str, PvcState] = field(default_factory=dict)
    # Whether the StorageClass of undersized claims allows expansion (`allowVolumeExpansion`);
    # None when no claim is undersized (the shell reads the class only then) or unknown.
    volume_expansion: bool | None = None
    auth: AuthState = field(default_factory=AuthState)
    # In-place rollback to a backup: the request, the backup, its verification, status's record.
    rollback: RollbackState = field(default_factory=RollbackState)
    space: SpaceState = field(default_factory=SpaceState)
    # Only when the member list did not answer: what each member pod's etcd says locally.
    local_views: Mapping[str, LocalView] = field(default_factory=dict)
    forced_start: ForcedStart | None = None
    # status.downgradeTarget: etcd's downgrade target (e.g. "3.5.0") recorded while a downgrade is
    # enabled, so that a member recreated while no member answers (one member mid-restart)
    # runs the target rather than the version it is being moved away from.
    status_downgrade: str | None = None
    # replace (issue 13): the `etcd.operator.io/replace-member` annotation's value (a member's
    # name; None: no request), and status's record of the request acted on.
    replace_request: str | None = None
    replacement: ReplacementRecord | None = None
    # corruption check (issue 13): each voter's HashKV at one common revision, by member ID;
    # empty unless a check ran this round.
    kv_hashes: Mapping[int, KvHash] = field(default_factory=dict)
