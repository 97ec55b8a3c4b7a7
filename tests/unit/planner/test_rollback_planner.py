"""In-place rollback to a backup: refusals change nothing; the sequence is resumable after a
kill at any step, bootstraps once, never deletes a claim, and retires every old one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from etcd_operator.naming import pvc_name
from etcd_operator.planner import (
    Bootstrap,
    CreatePod,
    Decision,
    Degraded,
    DeletePod,
    DeletePVC,
    EtcdMember,
    InSync,
    MemberHealth,
    Observed,
    PodState,
    PvcState,
    Reason,
    RecordRollback,
    RecordVolume,
    RetireVolume,
    RollbackPhase,
    VerifyBackup,
    Wait,
    acts,
    decide,
    split_claims,
)
from etcd_operator.planner.model import (
    RollbackRecord,
    RollbackRequest,
    RollbackState,
    SnapshotCheck,
)
from etcd_operator.planner.rollback import refusal
from unit.support.observed import (
    NAME,
    UID,
    claim,
    cluster,
    fresh,
    health,
    mid,
    name,
    url,
    without_pod,
)
from unit.support.rollback import BACKUP, BACKUP_UID, REVISION, backup, requested, verified


def with_rollback(o: Observed, state: RollbackState) -> Observed:
    return replace(o, rollback=state)


@pytest.mark.parametrize(
    ("state", "says"),
    [
        (requested(verified(), confirmed=False), "confirm must be exactly 'etcd/nightly'"),
        (RollbackState(requested().request, None), "does not exist"),
        (replace(requested(verified()), backup=backup(phase="Failed")), "is Failed"),
        (replace(requested(verified()), backup=backup(phase="")), "not started"),
        (replace(requested(verified()), backup=backup(cluster_name="other")), "allowOtherCluster"),
        (
            replace(requested(verified()), backup=backup(cluster_uid="uid-earlier")),
            "taken of an earlier EtcdCluster etcd (UID uid-earlier",
        ),
        (replace(requested(), backup=backup(unreadable="cannot read it")), "cannot read it"),
        (requested(verified(ok=False)), "failed verification: bad"),
    ],
)
def test_a_refused_rollback_changes_nothing_and_says_why(state: RollbackState, says: str) -> None:
    d = decide(with_rollback(cluster(3), state))
    assert d.step == Degraded(Reason.ROLLBACK_REFUSED)
    assert says in d.message and "nothing changed" in d.message


def test_a_copied_manifest_bootstraps_a_new_cluster_empty_and_then_says_why() -> None:
    o = with_rollback(fresh(3), requested(verified()))
    step = decide(o).step
    assert isinstance(step, Bootstrap) and not step.restore
    refused = refusal(o)
    assert refused is not None and "spec.bootstrap.restore" in refused


def test_a_refused_request_does_not_stop_healing() -> None:
    o = with_rollback(without_pod(cluster(3), 2), requested(verified(), confirmed=False))
    step = decide(o).step
    assert isinstance(step, CreatePod) and step.member == name(2)


def test_a_backup_of_another_cluster_is_accepted_only_when_allowed() -> None:
    state = replace(
        requested(verified(), allow_other_cluster=True), backup=backup(cluster_name="other")
    )
    assert isinstance(decide(with_rollback(cluster(3), state)).step, RecordRollback)


def test_a_backup_of_an_earlier_cluster_of_the_same_name_only_when_allowed() -> None:
    earlier = backup(cluster_uid="uid-earlier")
    allowed = replace(requested(verified(), allow_other_cluster=True), backup=earlier)
    assert isinstance(decide(with_rollback(cluster(3), allowed)).step, RecordRollback)
    ours = replace(requested(verified()), backup=backup(cluster_uid=cluster(3).cluster.uid))
    assert isinstance(decide(with_rollback(cluster(3), ours)).step, RecordRollback)


def test_the_snapshot_is_verified_before_anything_is_touched() -> None:
    o = with_rollback(cluster(3), requested())
    assert decide(o).step == VerifyBackup(BACKUP, BACKUP_UID)
    assert decide(with_rollback(o, requested(SnapshotCheck()))).step == Wait(
        Reason.ROLLBACK_VERIFYING
    )


def test_the_start_is_recorded_with_the_revisions_before_any_member_stops() -> None:
    o = cluster(3)
    served = {m: replace(h, revision=100 + m % 7) for m, h in o.member_health.items()}
    o = with_rollback(replace(o, member_health=served), requested(verified()))
    step = decide(o).step
    assert step == RecordRollback(
        RollbackPhase.STOPPING,
        BACKUP,
        BACKUP_UID,
        1,
        revision=REVISION,
        sha256="ab" * 32,
        from_revision=max(h.revision for h in served.values()),
    )


def test_a_completed_rollback_is_not_repeated_while_the_spec_still_names_it() -> None:
    done = RollbackRecord(RollbackPhase.COMPLETED, BACKUP, BACKUP_UID, 1)
    o = with_rollback(cluster(3), replace(requested(verified()), record=done))
    assert decide(o).step == InSync()
    # The next rollback (another backup) is a new epoch.
    again = replace(requested(verified()), record=replace(done, backup="older"))
    step = decide(with_rollback(cluster(3), again)).step
    assert isinstance(step, RecordRollback) and step.epoch == 2


def test_a_request_done_before_a_quorum_loss_recovery_is_not_done_again_after_it() -> None:
    """spec.rollback still names the backup rolled back to at epoch 1; a FromLatestBackup
    recovery then restored a newer backup (the record names that one now). The old request
    must not roll the recovered cluster back again (found by e2e test_incarnation)."""
    recovered = RollbackRecord(RollbackPhase.COMPLETED, "newer", "uid-newer", 2)
    carried = replace(recovered, requested=BACKUP, requested_uid=BACKUP_UID)
    o = with_rollback(cluster(3), replace(requested(verified()), record=carried))
    assert decide(o).step == InSync()
    # Without the carried request it would have been (the bug): a third rollback.
    o = with_rollback(cluster(3), replace(requested(verified()), record=recovered))
    step = decide(o).step
    assert isinstance(step, RecordRollback) and step.epoch == 3
    # A new EtcdBackup under the same name is a new request.
    o = with_rollback(cluster(3), replace(requested(verified()), record=carried))
    o = replace(o, rollback=replace(o.rollback, backup=backup(uid="uid-recreated")))
    assert isinstance(decide(o).step, RecordRollback)


def test_a_rollback_under_way_goes_on_when_the_request_is_removed() -> None:
    record = RollbackRecord(RollbackPhase.STOPPING, BACKUP, BACKUP_UID, 1)
    d = decide(with_rollback(cluster(3), RollbackState(record=record)))
    assert d.step == DeletePod(name(0))


# --- the whole sequence in a small world, with a kill at every step -------------------------


@dataclass
class World:
    """Pods, claims, etcd and status.rollback, changed only by applied steps."""

    n: int
    pods: dict[str, PodState]
    claims: dict[str, tuple[str, PvcState]]  # claim name -> (member, claim)
    members: tuple[EtcdMember, ...] | None
    health: dict[int, MemberHealth]
    state: RollbackState
    next_id: int = 0x500
    applied: list[Decision] = field(default_factory=list)

    @staticmethod
    def running(n: int) -> World:
        o = cluster(n)
        claims = {name(i): (name(i), claim(i)) for i in range(n)}
        health = {m: replace(h, revision=200) for m, h in o.member_health.items()}
        assert o.members is not None
        return World(n, dict(o.pods), claims, o.members, health, requested())

    def observed(self) -> Observed:
        current, others = split_claims(self.claims.values(), UID)
        o = cluster(self.n)
        return replace(
            o,
            members=self.members,
            member_health=self.health if self.members is not None else {},
            leader_id=None,
            pods=dict(self.pods),
            pvcs=current,
            other_claims=others,
            rollback=self.state,
        )

    def apply(self, d: Decision) -> None:
        self.applied.append(d)
        step = d.step
        match step:
            case VerifyBackup():
                self.state = replace(self.state, check=verified())
            case RecordRollback(phase=phase, epoch=epoch, started=started, formed=formed):
                record = RollbackRecord(
                    phase, BACKUP, BACKUP_UID, epoch, started=started, formed=formed
                )
                self.state = replace(self.state, record=record)
            case DeletePod(member=member):
                self.pods[member] = replace(self.pods[member], deleting=True, ready=False)
                self.members = None  # a member stopped on purpose: the old cluster is going
            case RetireVolume(claim=c):
                member, pvc = self.claims[c]
                self.claims[c] = (member, replace(pvc, retired=True))
            case Bootstrap(members=names, initial_cluster=initial):
                for member in names:
                    self._start(member, initial.peers, self._free_claim(member))
            case CreatePod(member=member, initial_cluster=initial, claim=c):
                self._start(member, initial.peers, c or pvc_name(member))
            case RecordVolume(claim=c, member_id=member_id):
                member, pvc = self.claims[c]
                self.claims[c] = (member, replace(pvc, member_id=member_id))
            case Wait() | Degraded() | InSync():
                pass
            case _:
                raise AssertionError(f"unexpected step {step}")

    def _free_claim(self, member: str) -> str:
        c, n = pvc_name(member), 1
        while c in self.claims:
            c, n = f"{pvc_name(member)}-{n}", n + 1
        return c

    def _start(self, member: str, peers: tuple[tuple[str, str], ...], c: str) -> None:
        assert member not in self.pods, "a pod is created only where none exists"
        if c in self.claims:
            owner, pvc = self.claims[c]
            assert owner == member and not pvc.retired and pvc.member_id is None
        else:
            self.claims[c] = (member, PvcState(claim=c, cluster_uid=UID))
        self.pods[member] = PodState(bootstrap_members=tuple(n for n, _ in peers))

    def tick(self) -> None:
        """Time passes: deleted pods go; a complete initial cluster forms."""
        self.pods = {n: p for n, p in self.pods.items() if not p.deleting}
        initial = [name(i) for i in range(self.n)]
        restored = self.state.record is not None and self.state.record.phase in (
            RollbackPhase.RESTORING,
            RollbackPhase.COMPLETED,
        )
        if restored and self.members is None and all(n in self.pods for n in initial):
            members = []
            for i, n in enumerate(initial):
                self.next_id += 1
                members.append(EtcdMember(self.next_id, n, (url(i),), (), False))
                self.health[self.next_id] = health(leader=i == 0, revision=REVISION)
            self.members = tuple(members)


def run(world: World, *, kill_at: int | None = None, limit: int = 80) -> World:
    """Decide and apply until Completed; at round `kill_at` the operator dies before applying."""
    for round_ in range(limit):
        d = decide(world.observed())
        record = world.state.record
        if record is not None and record.phase is RollbackPhase.COMPLETED and not acts(d.step):
            return world
        if round_ != kill_at:
            world.apply(d)
        world.tick()
    raise AssertionError(f"no completion in {limit} rounds: {world.applied[-5:]}")


def test_the_whole_rollback_of_three_members() -> None:
    world = run(World.running(3))
    kinds = [type(d.step).__name__ for d in world.applied if acts(d.step)]
    assert kinds[:2] == ["VerifyBackup", "RecordRollback"]
    assert kinds.count("Bootstrap") == 1
    assert kinds[-1] == "RecordRollback"
    assert not any(isinstance(d.step, DeletePVC) for d in world.applied)
    old = {name(i) for i in range(3)}
    assert all(world.claims[c][1].retired for c in old), "every old claim is kept, retired"
    new = {c for c, (_, p) in world.claims.items() if not p.retired}
    assert new == {f"{name(i)}-1" for i in range(3)}
    assert all(world.claims[c][1].member_id is not None for c in new)
    bootstrap = next(d.step for d in world.applied if isinstance(d.step, Bootstrap))
    assert bootstrap.restore and bootstrap.initial_cluster.token == f"{NAME}-{UID}-1"
    everyone = tuple(name(i) for i in range(3))
    assert world.state.record == RollbackRecord(
        RollbackPhase.COMPLETED, BACKUP, BACKUP_UID, 1, started=everyone, formed=True
    )
    # The old members were stopped only after the start was recorded.
    first_stop = next(i for i, d in enumerate(world.applied) if isinstance(d.step, DeletePod))
    started = next(i for i, d in enumerate(world.applied) if isinstance(d.step, RecordRollback))
    assert started < first_stop


@pytest.mark.parametrize("kill_at", range(30))
def test_a_kill_at_any_round_resumes_and_bootstraps_once(kill_at: int) -> None:
    world = run(World.running(3), kill_at=kill_at)
    assert sum(isinstance(d.step, Bootstrap) for d in world.applied) == 1
    assert not any(isinstance(d.step, DeletePVC) for d in world.applied)
    assert world.state.record is not None
    assert world.state.record.phase is RollbackPhase.COMPLETED


def test_a_bootstrap_cut_short_creates_only_the_missing_members() -> None:
    world = World.running(3)
    record = RollbackRecord(RollbackPhase.RESTORING, BACKUP, BACKUP_UID, 2)
    world.state = replace(world.state, record=record)
    world.pods, world.members = {}, None
    world.claims = {c: (m, replace(p, retired=True)) for c, (m, p) in world.claims.items()}
    d = decide(world.observed())
    assert isinstance(d.step, Bootstrap) and d.reason is Reason.ROLLBACK_RESTORE
    bootstrap = d.step
    # Only the first pod was created before the kill.
    world._start(name(0), bootstrap.initial_cluster.peers, f"{name(0)}-1")
    step = decide(world.observed()).step
    assert isinstance(step, CreatePod) and step.member == name(1) and step.restore
    assert step.claim == f"{name(1)}-1"
    assert step.initial_cluster.token == f"{NAME}-{UID}-2"


def test_a_single_member_cluster_rolls_back_too() -> None:
    world = run(World.running(1))
    assert world.state.record is not None
    assert world.state.record.phase is RollbackPhase.COMPLETED
    assert mid(0) not in {m.id for m in world.members or ()}


# --- quorum loss: FromLatestBackup ---------------------------------------------------------


def quorum_lost(lost: int) -> Observed:
    """Three members on record, none answering, `lost` of them with their data gone."""
    o = replace(cluster(3), members=None, member_health={}, leader_id=None)
    pods = {
        n: replace(p, ready=False, data_lost=i < lost) for i, (n, p) in enumerate(o.pods.items())
    }
    return replace(o, pods=pods)


def recovering(check: SnapshotCheck | None = None) -> RollbackState:
    return RollbackState(
        backup=backup(),
        check=check,
        recovery=RollbackRequest(BACKUP, cause="QuorumLoss"),
        last_seen_revision=90,
    )


def test_a_majority_lost_for_good_recovers_from_the_newest_backup() -> None:
    o = with_rollback(quorum_lost(2), recovering())
    assert decide(o).step == VerifyBackup(BACKUP, BACKUP_UID)
    d = decide(with_rollback(o, recovering(verified())))
    assert d.step == RecordRollback(
        RollbackPhase.STOPPING,
        BACKUP,
        BACKUP_UID,
        1,
        cause="QuorumLoss",
        revision=REVISION,
        sha256="ab" * 32,
        from_revision=90,
    )
    assert "50 revisions lost" in d.message
    # A last revision seen older than the backup's (status written before the last writes)
    # says it does not know, never a negative count.
    stale = replace(recovering(verified()), last_seen_revision=REVISION - 20)
    d = decide(with_rollback(quorum_lost(2), stale))
    assert "how much is lost is unknown" in d.message and "-20" not in d.message


def test_manual_mode_only_reports_a_lost_quorum() -> None:
    d = decide(quorum_lost(2))
    assert d.step == Degraded(Reason.QUORUM_LOST)


def test_a_minority_lost_is_no_reason_to_go_back_to_a_backup() -> None:
    d = decide(with_rollback(quorum_lost(1), recovering(verified())))
    assert not isinstance(d.step, RecordRollback | VerifyBackup)


def test_a_recovery_whose_snapshot_fails_verification_says_so() -> None:
    d = decide(with_rollback(quorum_lost(3), recovering(verified(ok=False))))
    assert d.step == Degraded(Reason.ROLLBACK_REFUSED) and "failed verification" in d.message


def test_the_recovery_runs_the_whole_sequence() -> None:
    world = World.running(3)
    world.members, world.health = None, {}
    world.pods = {n: replace(p, ready=False, data_lost=n != name(0)) for n, p in world.pods.items()}
    world.state = recovering()
    world = run(world)
    assert sum(isinstance(d.step, Bootstrap) for d in world.applied) == 1
    assert all(world.claims[name(i)][1].retired for i in range(3))
