"""A small, honest model of one etcd cluster's world for planner tests.

It applies planner steps as sequences of single API calls, can be interrupted between any two
of them (the operator being killed), injects faults, and checks after every call the things the
planner promises: no call that etcd would reject, no duplicate member for a name, no bootstrap
after the first, and no operator action that takes a cluster with quorum below quorum.

Pods and volumes behave as real ones do, not as the planner assumes: member-init checks only
what the pod was told to expect, etcd starts on whatever log the volume holds, and a member that
has voted and starts again on an empty volume under its old ID is the data loss the world
reports (`WorldError`), as are records that lie and claims deleted against the policy.

With `empty_dir` a member's volume lives and dies with its pod: a pod that is deleted, killed
or evicted takes its data along, and a new pod starts empty. Evictions (the operator's and a
node drain's) go through a model of the PodDisruptionBudget (minAvailable = quorum of the
voters, not-ready pods always evictable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import assert_never

from etcd_operator.naming import MAX_REPLICAS, PLAINTEXT, MemberTLS, member_name, pvc_name
from etcd_operator.planner import (
    AddLearner,
    Bootstrap,
    CancelDowngrade,
    ClusterRef,
    ClusterState,
    CreatePod,
    Decision,
    Degraded,
    DeletePod,
    DeletePVC,
    DesiredSpec,
    Done,
    EnableDowngrade,
    EndForcedStart,
    EtcdMember,
    ExpandVolume,
    ForcedStart,
    ForceNewCluster,
    InSync,
    LocalView,
    MarkBootstrapped,
    MemberHealth,
    MoveLeader,
    Observed,
    Paused,
    PodPhase,
    PodState,
    PromoteLearner,
    PvcRetention,
    PvcState,
    RecordReplacement,
    RecordVolume,
    RemoveMember,
    ReplacementRecord,
    RetireVolume,
    Step,
    UpdatePeerURL,
    UpgradeMember,
    Wait,
    decide,
    quorum,
    split_claims,
)
from etcd_operator.planner.tls_switch import serves_plaintext_clients
from etcd_operator.versions import Version, parse_version

CLUSTER = "demo"
UID = "uid-1"
LEADER_INDEX = 10_000
CATCH_UP_PER_TICK = 4_000


class WorldError(AssertionError):
    """A call the real system would reject, or a broken safety promise."""


def url(name: str, https: bool = False) -> str:
    return f"{'https' if https else 'http'}://{name}.{CLUSTER}.default.svc:2380"


URLS = {member_name(CLUSTER, i): url(member_name(CLUSTER, i)) for i in range(MAX_REPLICAS)}


@dataclass
class WMember:
    id: int
    slot: str
    learner: bool
    started: bool
    index: int = 0
    https: bool = False  # its registered peer URL's scheme


@dataclass
class WPod:
    version: str
    boot: tuple[str, ...] = ()  # non-empty for initial-cluster-state=new pods
    deleting: bool = False
    claim: str = ""
    expect: int | None = None  # the member ID member-init was told the volume holds
    template: int = 0  # the World.template the pod was built from
    tls: MemberTLS = PLAINTEXT
    peer_tls: bool = False  # holds the peer certificate, trusts the peer CA
    forced: bool = False  # built with --force-new-cluster


@dataclass
class WPvc:
    member: str  # the member label
    data: int | None = None  # the member id whose log the volume holds (the truth)
    deleting: bool = False
    uid: str | None = UID  # records on the claim, as the operator wrote them
    recorded: int | None = None
    retired: bool = False


@dataclass
class World:
    replicas: int
    version: str = "3.5.17"
    policy: PvcRetention = PvcRetention.RETAIN
    bootstrapped: bool = False
    formed: bool = False
    members: dict[int, WMember] = field(default_factory=dict)
    pods: dict[str, WPod] = field(default_factory=dict)
    pvcs: dict[str, WPvc] = field(default_factory=dict)
    leader: int | None = None
    next_id: int = 0x1000
    last_version: str | None = None
    calls: int = 0
    history: list[Step] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)  # pods restarted for upgrades, in order
    empty_dir: bool = False
    template: int = 0  # bumped when the spec that shapes pods changes (a rollout follows)
    refused_evictions: int = 0
    peer_tls: bool = False  # spec.tls (a TLS change also bumps `template`, as its hash does)
    client_tls: bool = False
    client_plaintext: bool = False
    # Quorum loss (branch survivor): spec.recovery.quorumLoss, status.quorumLossRecovery, and
    # how many times etcd actually rewrote the membership to one member.
    quorum_loss: str = "Manual"
    record: ForcedStart | None = None
    forced_starts: int = 0
    # etcd's versions (issue 13, downgrade): the cluster version's minor (up to the lowest minor
    # members run, down only to an enabled downgrade's target), the storage version following
    # it one tick later, and the target of an enabled downgrade.
    cluster_minor: str | None = None
    storage_minor: str | None = None
    downgrade: str | None = None
    status_downgrade: str | None = None  # status.downgradeTarget, as the shell writes it
    # replace (issue 13): the replace-member annotation, and status.replacement
    replace_request: str | None = None
    replacement: ReplacementRecord | None = None
    # Claims below spec.storage.size whose StorageClass cannot expand (storage growth).
    small_claims: set[str] = field(default_factory=set)

    # --- what runs -----------------------------------------------------------------------

    def slot_member(self, name: str) -> WMember | None:
        found = [m for m in self.members.values() if m.slot == name]
        if len(found) > 1:
            raise WorldError(f"duplicate members for {name}: {found}")
        return found[0] if found else None

    def pod_claim(self, name: str) -> WPvc | None:
        pod = self.pods.get(name)
        return self.pvcs.get(pod.claim) if pod is not None else None

    def current_claim(self, name: str) -> tuple[str, WPvc] | None:
        live = [(c, p) for c, p in self.pvcs.items() if p.member == name and not p.retired]
        live = [(c, p) for c, p in live if p.uid in (None, UID)]
        return sorted(live, key=lambda cp: (cp[1].recorded is None, cp[0]))[0] if live else None

    def runs_as(self, name: str) -> WMember | None:
        """The member a pod is running as, or None when its etcd cannot run."""
        pod, pvc = self.pods.get(name), self.pod_claim(name)
        member = self.slot_member(name)
        if pod is None or pod.deleting or pvc is None or member is None:
            return None
        if pvc.data == member.id and not self.data_lost(name):
            return member
        return None

    def data_lost(self, name: str) -> bool:
        """member-init refused: the volume lacks the log the pod was told to expect."""
        pod, pvc = self.pods.get(name), self.pod_claim(name)
        if pod is None or pvc is None or pod.expect is None:
            return False
        return pvc.data != pod.expect

    def healthy(self, m: WMember) -> bool:
        return self.runs_as(m.slot) is m

    def voters(self) -> list[WMember]:
        return [m for m in self.members.values() if not m.learner]

    def has_quorum(self) -> bool:
        if not self.formed:
            return False
        voters = self.voters()
        return sum(self.healthy(m) for m in voters) >= quorum(len(voters))

    # --- time passes ---------------------------------------------------------------------

    def tick(self) -> None:
        for name in [n for n, p in self.pods.items() if p.deleting]:
            self._kill_pod(name)
        used = {p.claim for p in self.pods.values()}
        for claim in [c for c, p in self.pvcs.items() if p.deleting and c not in used]:
            del self.pvcs[claim]
        if not self.formed:
            self._form()
        for name, pod in self.pods.items():
            self._start(name, pod)
        for name, pod in self.pods.items():
            self._force_new_cluster(name, pod)
        for m in self.members.values():
            if self.healthy(m):
                step = LEADER_INDEX if not m.learner else CATCH_UP_PER_TICK
                m.index = min(LEADER_INDEX, m.index + step)
        self._elect()
        if self.has_quorum():
            self.last_version = self.version_of_cluster()
        self._advance_versions()

    def _elect(self) -> None:
        if not self.has_quorum():
            self.leader = None
        elif self.leader not in self.members or not self.healthy(self.members[self.leader]):
            self.leader = min(m.id for m in self.voters() if self.healthy(m))

    def _form(self) -> None:
        boot = {p.boot for p in self.pods.values() if p.boot}
        if len(boot) != 1:
            return
        initial = next(iter(boot))
        up = [n for n in initial if n in self.pods and self.pod_claim(n) is not None]
        if len(up) < quorum(len(initial)):
            return
        for name in initial:
            mid = self._new_id()
            https = self.pods[name].tls.peer if name in self.pods else self.peer_tls
            self.members[mid] = WMember(mid, name, learner=False, started=False, https=https)
        self.formed = True

    def _start(self, name: str, pod: WPod) -> None:
        pvc, member = self.pod_claim(name), self.slot_member(name)
        if pod.deleting or pvc is None or member is None or pvc.data is not None:
            return
        if self.data_lost(name):
            return  # member-init refused
        if member.started:
            # Nothing told member-init to expect a log: etcd starts empty under the old ID and
            # votes without the entries it acknowledged.
            raise WorldError(f"{name} ({member.id:x}) started on an empty volume under its old ID")
        if pod.boot and not self.formed:
            return
        pvc.data = member.id
        member.started = True

    def _force_new_cluster(self, name: str, pod: WPod) -> None:
        """etcd started with --force-new-cluster: only it remains, with its data and ID. It does
        so at every start of that pod; a pod here starts once, so once per flagged pod."""
        member = self.runs_as(name)
        if not pod.forced or member is None or list(self.members) == [member.id]:
            return
        member.learner = False
        self.members = {member.id: member}
        self.forced_starts += 1
        self._elect()

    def _new_id(self) -> int:
        self.next_id += 0x101
        return self.next_id

    def version_of_cluster(self) -> str | None:
        versions = [self.pods[m.slot].version for m in self.members.values() if self.healthy(m)]
        return min(versions) if versions else None

    # --- observation ---------------------------------------------------------------------

    def observe(self) -> Observed:
        listed = tuple(
            EtcdMember(
                m.id,
                m.slot if m.started else "",
                (url(m.slot, m.https),),
                (url(m.slot).replace("2380", "2379"),) if m.started else (),
                m.learner,
            )
            for m in sorted(self.members.values(), key=lambda m: m.id)
        )
        members = listed if self.has_quorum() else None
        # No quorum: each running member still answers its own member list and raft position.
        local = {
            n: LocalView(m.id, listed, 1, m.index, m.index)
            for n in self.pods
            if members is None and (m := self.runs_as(n)) is not None
        }
        health = {
            m.id: MemberHealth(
                reachable=True,
                healthy=True,
                version=self.pods[m.slot].version,
                raft_index=m.index,
                applied_index=m.index,
                is_leader=m.id == self.leader,
                **self._version_reports(self.pods[m.slot].version),
            )
            for m in self.members.values()
            if self.healthy(m) and self.formed
        }
        pods = {}
        for name, pod in self.pods.items():
            running = self.runs_as(name) is not None
            starting = not self.formed and bool(pod.boot)
            lost = self.data_lost(name)
            pods[name] = PodState(
                phase=PodPhase.RUNNING,
                ready=running,
                deleting=pod.deleting,
                version=pod.version,
                crash_looping=not running and not starting and not lost and not self._joining(name),
                data_lost=lost,
                bootstrap_members=pod.boot,
                outdated=pod.template != self.template,
                tls=pod.tls,
                peer_tls=pod.peer_tls,
                forced=pod.forced,
            )
        current, others = split_claims(
            (
                (
                    p.member,
                    PvcState(
                        bound=True,
                        deleting=p.deleting,
                        claim=c,
                        cluster_uid=p.uid,
                        member_id=p.recorded,
                        retired=p.retired,
                        undersized=c in self.small_claims,
                    ),
                )
                for c, p in self.pvcs.items()
            ),
            UID,
        )
        return Observed(
            cluster=ClusterRef(CLUSTER, "default", UID),
            generation=1,
            spec=DesiredSpec(
                self.replicas,
                self.version,
                pvc_when_scaled=self.policy,
                empty_dir=self.empty_dir,
                peer_tls=self.peer_tls,
                client_tls=self.client_tls,
                client_plaintext=self.client_plaintext,
                quorum_loss=self.quorum_loss,
            ),
            bootstrapped=self.bootstrapped,
            members=members,
            expected_peer_urls={n: url(n, self.peer_tls) for n in URLS},
            member_health=health,
            leader_id=self.leader if members is not None else None,
            pods=pods,
            pvcs=current if not self.empty_dir else {},  # emptyDirs are part of their pods
            status_version=self.last_version,
            status_downgrade=self.status_downgrade,
            other_claims=others if not self.empty_dir else {},
            local_views=local,
            forced_start=self.record,
            replace_request=self.replace_request,
            replacement=self.replacement,
            volume_expansion=False if any(p.undersized for p in current.values()) else None,
        )

    def _joining(self, name: str) -> bool:
        member = self.slot_member(name)
        pvc = self.pod_claim(name)
        fresh = pvc is not None and pvc.data is None
        return member is not None and not member.started and fresh and not self.data_lost(name)

    # --- applying steps as single API calls ----------------------------------------------

    def calls_for(self, step: Step) -> list[Callable[[], None]]:
        match step:
            case Bootstrap(members=names, initial_cluster=ic, version=version, tls=tls):
                if self.bootstrapped or self.formed:
                    raise WorldError("Bootstrap of a cluster that has formed")
                boot = tuple(n for n, _ in ic.peers)
                out: list[Callable[[], None]] = []
                for n in names:
                    out += [
                        partial(self._create_pvc, n, pvc_name(n)),
                        partial(self._create_pod, n, version, boot, pvc_name(n), None, tls),
                    ]
                return out
            case CreatePod(
                member=name,
                initial_cluster=ic,
                version=version,
                claim=claim,
                member_id=expect,
                tls=tls,
            ):
                if ic.state is ClusterState.NEW and self.bootstrapped:
                    raise WorldError(f"CreatePod(new) for {name} after bootstrap")
                boot = tuple(n for n, _ in ic.peers) if ic.state is ClusterState.NEW else ()
                claim = claim or pvc_name(name)
                return [
                    lambda: self._create_pvc(name, claim),
                    lambda: self._create_pod(name, version, boot, claim, expect, tls),
                ]
            case AddLearner(member=name, peer_url=peer_url):
                return [lambda: self._add_learner(name, peer_url)]
            case PromoteLearner(member_id=mid):
                return [lambda: self._promote(mid)]
            case MoveLeader(from_id=from_id, to_id=to_id):
                return [lambda: self._move_leader(from_id, to_id)]
            case RemoveMember(member_id=mid):
                return [lambda: self._remove(mid)]
            case DeletePod(member=name):
                return [lambda: self._delete_pod(name)]
            case DeletePVC(member=name, claim=claim):
                return [lambda: self._delete_pvc(claim or pvc_name(name))]
            case RecordVolume(claim=claim, member_id=mid):
                return [lambda: self._record(claim, mid)]
            case RetireVolume(claim=claim, member_id=mid):
                return [lambda: self._retire(claim, mid)]
            case UpgradeMember(
                member=name, member_id=mid, to_version=version, evict=evict, tls=tls
            ):
                pod = self.pods.get(name)
                claim = pod.claim if pod is not None else pvc_name(name)
                restart = [lambda: self._restart_for_upgrade(name, evict)]
                if self.empty_dir:
                    return restart  # a new pod would start empty: the member is replaced
                return [*restart, lambda: self._create_pod(name, version, (), claim, mid, tls)]
            case UpdatePeerURL(member_id=mid, peer_url=peer_url):
                return [lambda: self._update_peer_url(mid, peer_url)]
            case ExpandVolume():
                return []
            case EnableDowngrade(version=version):
                return [lambda: self._enable_downgrade(version)]
            case CancelDowngrade():
                return [self._cancel_downgrade]
            case MarkBootstrapped():
                return [self._mark_bootstrapped]
            case ForceNewCluster(member=name, member_id=mid, version=version, claim=claim, tls=tls):
                return [
                    lambda: self._record_forced_start(ForcedStart(name, mid)),
                    lambda: self._force_pod(name, version, claim or pvc_name(name), mid, tls),
                ]
            case EndForcedStart(member=name, member_id=mid):
                return [
                    lambda: self._record_forced_start(ForcedStart(name, mid, done=True)),
                    lambda: self._end_forced_start(name),
                ]
            case RecordReplacement(request=request, member=name, member_id=mid):
                record = ReplacementRecord(request, name, mid)
                return [lambda: setattr(self, "replacement", record)]
            case Wait() | Degraded() | Paused() | InSync() | Done():
                return []
            case _:
                assert_never(step)

    def apply(self, decision: Decision, calls_before_crash: int | None = None) -> None:
        """Apply a step's calls, or only the first `calls_before_crash` of them."""
        self.history.append(decision.step)
        calls = self.calls_for(decision.step)
        if calls_before_crash is not None:
            calls = calls[:calls_before_crash]
        for call in calls:
            had_quorum = self.has_quorum()
            call()
            self.calls += 1
            self.check_invariants(had_quorum, decision)

    def check_invariants(self, had_quorum: bool, decision: Decision) -> None:
        for name in URLS:
            self.slot_member(name)  # raises on duplicates
        if self.formed and not self.members:
            raise WorldError("membership became empty")
        if had_quorum and not self.has_quorum():
            # One or two voters tolerate no member down: an upgrade restart of a member that
            # keeps its volume is a (documented) short outage there, never anywhere else.
            step = decision.step
            small = (
                len(self.voters()) <= 2
                and isinstance(step, UpgradeMember)
                and not step.evict
                and not self.empty_dir
            )
            # The rebuilt survivor, alone, restarts once without --force-new-cluster.
            rebuilt = isinstance(step, EndForcedStart) and len(self.voters()) == 1
            if not small and not rebuilt:
                raise WorldError(f"{decision} lost quorum")
        self._check_reachable(decision)

    def _check_reachable(self, decision: Decision) -> None:
        """Every member stays reachable by every pod: an https peer URL only once every pod
        trusts the peer CA, and one client scheme that every pod serves."""
        pods = [p for p in self.pods.values() if not p.deleting]
        for m in self.members.values():
            if m.https and not all(p.peer_tls for p in pods):
                raise WorldError(f"{decision}: {m.slot} serves peers over https, not all trust it")
        if not (
            all(serves_plaintext_clients(p.tls) for p in pods) or all(p.tls.client for p in pods)
        ):
            raise WorldError(f"{decision}: no client scheme reaches every member")

    def _create_pvc(self, name: str, claim: str) -> None:
        if self.empty_dir:
            return  # no claims: the pod brings its own emptyDir
        existing = self.pvcs.get(claim)
        if existing is None:
            self.pvcs[claim] = WPvc(member=name)
        elif existing.uid != UID or existing.member != name or existing.retired:
            raise WorldError(f"claim {claim} of {name} exists and is not a fresh one of ours")

    def _create_pod(
        self,
        name: str,
        version: str,
        boot: tuple[str, ...],
        claim: str,
        expect: int | None,
        tls: MemberTLS,
    ) -> None:
        if name in self.pods:
            return  # AlreadyExists: the shell treats it as done
        if tls.peer and not self.peer_tls:
            raise WorldError(f"{name} would serve peers over https without a certificate")
        member = self.slot_member(name)
        if member is not None and not member.started and member.https != tls.peer:
            raise WorldError(f"{name} would advertise another peer URL than it was added with")
        self._check_version_accepted(name, version)
        self.pods[name] = WPod(
            version,
            boot,
            claim=claim,
            expect=expect,
            template=self.template,
            tls=tls,
            peer_tls=self.peer_tls,
        )
        if self.empty_dir:
            self.pvcs[claim] = WPvc(member=name)  # a new, empty emptyDir

    # --- etcd's versions and downgrades (issue 13) ----------------------------------------

    def _advance_versions(self) -> None:
        if not self.has_quorum():
            return
        # status.downgradeTarget: etcd's record while a 3.6 member answers (status.py)
        up = [self.pods[m.slot].version for m in self.voters() if self.healthy(m)]
        if any(self._version_reports(version) for version in up):
            self.status_downgrade = f"{self.downgrade}.0" if self.downgrade else None
        elif (
            self.status_downgrade
            and len(up) == len(self.voters())
            and all(_minor(version) + ".0" == self.status_downgrade for version in up)
        ):
            self.status_downgrade = None
        self.storage_minor = self.cluster_minor
        running = [_minor(self.pods[m.slot].version) for m in self.voters() if self.healthy(m)]
        if self.downgrade is not None:
            self.cluster_minor = self.downgrade
            everyone = len(running) == len(self.members)
            if everyone and all(r == self.downgrade for r in running):
                self.downgrade = None  # etcd ends the downgrade itself
            return
        lowest = min(running, key=_minor_key)
        if self.cluster_minor is None or _minor_key(lowest) > _minor_key(self.cluster_minor):
            self.cluster_minor = lowest

    def _version_reports(self, version: str) -> dict[str, str | None]:
        """What an etcd of `version` says of its storage version and the downgrade (3.6+)."""
        parsed = parse_version(version)
        if parsed is None or parsed < Version(3, 6, 0):
            return {}
        return {
            "storage_version": f"{self.storage_minor}.0" if self.storage_minor else None,
            "downgrade_target": f"{self.downgrade}.0" if self.downgrade else None,
        }

    def _check_version_accepted(self, name: str, version: str) -> None:
        """etcd refuses to start a member below the cluster version (the fatal "invalid
        downgrade; server version is lower than determined cluster version", seen with real
        etcd 3.5.35 on 3.6 data); during a downgrade the cluster version is its target. A 3.6
        member restarting during a downgrade to 3.5 runs (seen with etcd 3.6.16): a planner that
        recreates it there would only restart it again, which `converge` reports."""
        minor = _minor(version)
        floor = self.downgrade or self.cluster_minor
        if floor is not None and _minor_key(minor) < _minor_key(floor):
            raise WorldError(f"{name} at {version}: below the cluster version {self.cluster_minor}")

    def _enable_downgrade(self, version: str) -> None:
        self._require_quorum("downgrade enable")
        target = _minor(version)
        if self.downgrade == target:
            return  # "a downgrade job in progress": the shell counts it as done
        current = self.cluster_minor
        if (
            self.downgrade is not None
            or current is None
            or _minor_key(current) < (3, 6)
            or _minor_key(target) != (_minor_key(current)[0], _minor_key(current)[1] - 1)
        ):
            raise WorldError(f"etcd refuses a downgrade to {version} from {current}")
        self.downgrade = target

    def _cancel_downgrade(self) -> None:
        self._require_quorum("downgrade cancel")
        self.downgrade = None

    def _record(self, claim: str, mid: int) -> None:
        pvc = self.pvcs.get(claim)
        if pvc is None or pvc.data != mid:
            raise WorldError(f"recorded member {mid:x} on claim {claim}, which does not hold it")
        pvc.uid, pvc.recorded = UID, mid

    def _retire(self, claim: str, mid: int) -> None:
        if mid in self.members:
            raise WorldError(f"retired claim {claim} of member {mid:x}, which is still a member")
        pvc = self.pvcs.get(claim)
        if pvc is not None:
            pvc.retired = True

    def _require_quorum(self, what: str) -> None:
        if not self.has_quorum():
            raise WorldError(f"{what} without quorum: etcd cannot commit it")

    def _add_learner(self, name: str, peer_url: str) -> None:
        self._require_quorum("MemberAdd")
        https = peer_url.startswith("https://")
        if peer_url != url(name, https):
            raise WorldError(f"AddLearner {name} with peer URL {peer_url}")
        if any(m.slot == name for m in self.members.values()):
            raise WorldError(f"MemberAdd: peer URL {peer_url} already exists")
        if any(m.learner for m in self.members.values()):
            raise WorldError("MemberAdd: too many learner members in cluster")
        mid = self._new_id()
        self.members[mid] = WMember(mid, name, learner=True, started=False, https=https)

    def _update_peer_url(self, mid: int, peer_url: str) -> None:
        self._require_quorum("MemberUpdate")
        m = self.members.get(mid)
        if m is None:
            raise WorldError(f"MemberUpdate {mid:x}: member not found")
        https = peer_url.startswith("https://")
        if peer_url != url(m.slot, https):
            raise WorldError(f"MemberUpdate {m.slot} to another address: {peer_url}")
        m.https = https

    def _promote(self, mid: int) -> None:
        self._require_quorum("MemberPromote")
        m = self.members.get(mid)
        if m is None or not m.learner:
            raise WorldError(f"MemberPromote {mid:x}: not a learner")
        if m.index < LEADER_INDEX - 1000 or not self.healthy(m):
            raise WorldError(f"MemberPromote {mid:x}: learner not ready")
        m.learner = False

    def _move_leader(self, from_id: int, to_id: int) -> None:
        self._require_quorum("MoveLeader")
        target = self.members.get(to_id)
        if from_id != self.leader or target is None or target.learner or not self.healthy(target):
            raise WorldError(f"MoveLeader {from_id:x}->{to_id:x} rejected")
        self.leader = to_id

    def _remove(self, mid: int) -> None:
        self._require_quorum("MemberRemove")
        if mid not in self.members:
            raise WorldError(f"MemberRemove {mid:x}: member not found")
        del self.members[mid]
        self._elect()

    def _record_forced_start(self, record: ForcedStart) -> None:
        self.record = record  # status.quorumLossRecovery, one merge patch

    def _force_pod(self, name: str, version: str, claim: str, mid: int, tls: MemberTLS) -> None:
        pod = self.pods.get(name)
        if pod is not None:
            if pod.forced:
                raise WorldError(f"ForceNewCluster while {name}'s pod already carries the flag")
            self._delete_pod(name)  # its pod goes first; the step comes back once it is gone
            return
        self._create_pvc(name, claim)
        self._create_pod(name, version, (), claim, mid, tls)
        self.pods[name].forced = True

    def _end_forced_start(self, name: str) -> None:
        pod = self.pods.get(name)
        if pod is not None and pod.forced:
            self._delete_pod(name)

    def _delete_pod(self, name: str) -> None:
        if name in self.pods:
            self.pods[name].deleting = True

    def _kill_pod(self, name: str) -> None:
        pod = self.pods.pop(name, None)
        if self.empty_dir and pod is not None:
            self.pvcs.pop(pod.claim, None)  # the emptyDir goes with its pod

    def budget_allows_eviction(self, name: str) -> bool:
        """The PodDisruptionBudget: minAvailable = quorum of the voters; a pod that is not
        ready may always go (unhealthyPodEvictionPolicy: AlwaysAllow)."""
        member = self.slot_member(name)
        ready = [m for m in self.voters() if self.healthy(m)]
        if member is None or member not in ready:
            return True
        return len(ready) - 1 >= quorum(len(self.voters()))

    def _restart_for_upgrade(self, name: str, evict: bool = True) -> None:
        if evict and not self.budget_allows_eviction(name):
            self.refused_evictions += 1  # 429: the shell observes again later
            return
        member = self.slot_member(name)
        if member is not None and member.id == self.leader and len(self.voters()) > 1:
            raise WorldError(f"upgrade restarted the leader {name} without moving leadership")
        if any(not self.healthy(m) for m in self.members.values() if m.slot != name):
            raise WorldError(f"upgrade restarted {name} while another member is unhealthy")
        self.restarted.append(name)
        self._kill_pod(name)

    def _delete_pvc(self, claim: str) -> None:
        pvc = self.pvcs.get(claim)
        if pvc is None:
            return
        if pvc.uid != UID:
            raise WorldError(f"deleted claim {claim}, which is not this cluster's")
        if self.policy is PvcRetention.RETAIN and pvc.data is not None:
            raise WorldError(f"deleted claim {claim} holding a log that Retain keeps")
        if any(p.claim == claim for p in self.pods.values()):
            pvc.deleting = True  # kubernetes.io/pvc-protection keeps it while a pod uses it
        else:
            del self.pvcs[claim]
            self.small_claims.discard(claim)  # a claim made again has the new size

    def _mark_bootstrapped(self) -> None:
        if not self.formed:
            raise WorldError("MarkBootstrapped before the cluster formed")
        self.bootstrapped = True

    # --- faults --------------------------------------------------------------------------

    def intact_voters_after(self, name: str) -> int:
        return sum(
            1
            for m in self.voters()
            if m.slot != name and any(p.data == m.id for p in self.pvcs.values())
        )

    def recoverable_without(self, name: str) -> bool:
        """Whether a fault on `name` leaves a majority of voters with their data."""
        return self.intact_voters_after(name) >= quorum(len(self.voters()))

    def fault_kill_pod(self, name: str) -> None:
        self._kill_pod(name)

    def fault_drain(self, name: str) -> bool:
        """A node drain evicts `name`'s pod, if the disruption budget lets it."""
        if name not in self.pods or not self.budget_allows_eviction(name):
            return False
        self._kill_pod(name)
        return True

    def fault_wipe(self, name: str) -> None:
        """The disk behind the member's volume comes back empty; the claim and records stay."""
        found = self.current_claim(name)
        if found is not None:
            found[1].data = None

    def fault_lose_volume(self, name: str) -> None:
        self.pods.pop(name, None)
        found = self.current_claim(name)
        if found is not None:
            del self.pvcs[found[0]]

    def fault_stop_all(self) -> None:
        """Every pod is gone at once (a power cut, a namespace-wide mistake)."""
        self.pods.clear()

    def fault_lose_status(self) -> None:
        """The resource's status is lost (e.g. restored by a tool that drops status)."""
        self.bootstrapped = False

    # --- driving -------------------------------------------------------------------------

    def round(self, crash_after: int | None = None) -> Decision:
        """One reconcile: observe, decide, apply (maybe interrupted), time passes."""
        decision = decide(self.observe())
        self.apply(decision, crash_after)
        self.tick()
        return decision

    def converge(self, limit: int = 300) -> list[Decision]:
        decisions: list[Decision] = []
        for _ in range(limit):
            decision = self.round()
            decisions.append(decision)
            if isinstance(decision.step, InSync):
                return decisions
        tail = [d.message for d in decisions[-8:]]
        raise WorldError(f"no convergence after {limit} rounds; last: {tail}")

    def assert_settled(self) -> None:
        """Exactly `replicas` healthy voters, one per name, nothing stray."""
        voters = self.voters()
        assert len(voters) == self.replicas == len(self.members), self.members
        assert all(self.healthy(m) for m in voters)
        names = {m.slot for m in voters}
        assert len(names) == len(voters)
        assert set(self.pods) == names, (self.pods, names)
        live = {p.member for p in self.pvcs.values() if not p.retired and p.uid == UID}
        if self.policy is PvcRetention.DELETE:
            assert live == names, (self.pvcs, names)
        assert all(p.version == self.version for p in self.pods.values())
        assert all(p.template == self.template for p in self.pods.values())
        want = DesiredSpec(
            1,
            "",
            peer_tls=self.peer_tls,
            client_tls=self.client_tls,
            client_plaintext=self.client_plaintext,
        ).member_tls
        assert all(p.tls == want for p in self.pods.values()), self.pods
        assert all(m.https == self.peer_tls for m in self.members.values())


def _minor(version: str) -> str:
    return version.rsplit(".", 1)[0]


def _minor_key(minor: str) -> tuple[int, int]:
    major, _, rest = minor.partition(".")
    return int(major), int(rest)
