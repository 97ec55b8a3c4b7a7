"""An in-place rollback's Restoring phase: a restored member seen running is never restored
from the snapshot again under its old ID; once the restored cluster formed, one that lost its
data is removed while quorum holds and comes back as a learner, and the rollback completes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from etcd_operator.planner import (
    AddLearner,
    Bootstrap,
    ClusterState,
    CreatePod,
    Decision,
    Degraded,
    EtcdMember,
    InSync,
    MemberHealth,
    Observed,
    PodState,
    PromoteLearner,
    Reason,
    RecordRollback,
    RecordVolume,
    RemoveMember,
    RollbackPhase,
    Wait,
    acts,
    decide,
)
from etcd_operator.planner.model import RollbackRecord, RollbackState
from unit.support.observed import (
    INDEX,
    cluster,
    health,
    mid,
    name,
    set_health,
    url,
    without_pod,
)
from unit.support.rollback import BACKUP, BACKUP_UID

EPOCH = 2
EVERYONE = (name(0), name(1), name(2))


def record(started: tuple[str, ...] = (), formed: bool = False) -> RollbackRecord:
    return RollbackRecord(
        RollbackPhase.RESTORING, BACKUP, BACKUP_UID, EPOCH, started=started, formed=formed
    )


def restoring(
    n: int = 3,
    *,
    empty_dir: bool = True,
    started: tuple[str, ...] = (),
    formed: bool = False,
) -> Observed:
    """The restored members running and healthy, as status recorded them so far. With claims,
    each records its member's log (written once healthy)."""
    o = cluster(n, empty_dir=empty_dir)
    bootstrap = tuple(name(i) for i in range(n))
    return replace(
        o,
        pods={k: replace(p, bootstrap_members=bootstrap) for k, p in o.pods.items()},
        pvcs={} if empty_dir else o.pvcs,
        rollback=RollbackState(record=record(started, formed)),
    )


def unreachable(o: Observed, ordinal: int) -> Observed:
    return set_health(o, ordinal, reachable=False, healthy=False)


def pod_lost(o: Observed, ordinal: int) -> Observed:
    """Its pod is gone (with an emptyDir, its data too); the others no longer hear from it."""
    return unreachable(without_pod(o, ordinal), ordinal)


def test_members_seen_running_and_the_forming_are_recorded_first() -> None:
    d = decide(restoring())
    assert d.reason is Reason.ROLLBACK_MEMBERS_SEEN
    assert d.step == RecordRollback(
        RollbackPhase.RESTORING, BACKUP, BACKUP_UID, EPOCH, started=EVERYONE, formed=True
    )


def test_a_member_that_answers_before_the_cluster_formed_is_recorded_as_started() -> None:
    o = set_health(restoring(), 1, healthy=False)
    o = set_health(set_health(o, 0, healthy=False), 2, reachable=False, healthy=False)
    o = replace(o, members=tuple(replace(m, client_urls=()) for m in o.members or ()))
    d = decide(o)
    assert isinstance(d.step, RecordRollback)
    assert d.step.started == (name(0), name(1)) and not d.step.formed


def test_a_started_empty_dir_member_lost_after_forming_is_removed_not_restored() -> None:
    d = decide(pod_lost(restoring(started=EVERYONE, formed=True), 0))
    assert d.step == RemoveMember(mid(0), name(0))
    assert d.reason is Reason.REPLACE_LOST_MEMBER


def test_the_forming_is_known_from_status_when_nobody_answers() -> None:
    """Resumed from the records alone: no member answers this round, yet the lost member is
    not bootstrapped from the snapshot again."""
    o = replace(pod_lost(restoring(started=EVERYONE, formed=True), 0), members=None)
    o = replace(o, member_health={})
    d = decide(o)
    assert not isinstance(d.step, CreatePod | Bootstrap)
    assert isinstance(d.step, Degraded)


def test_a_formed_cluster_without_quorum_but_for_the_lost_member_waits_or_degrades() -> None:
    o = unreachable(pod_lost(restoring(started=EVERYONE, formed=True), 0), 1)
    d = decide(o)
    assert isinstance(d.step, Degraded), d
    assert "quorum" in d.message


def test_a_lost_single_member_after_forming_is_reported_not_restored() -> None:
    o = replace(pod_lost(restoring(1, started=(name(0),), formed=True), 0), members=None)
    d = decide(replace(o, member_health={}))
    assert isinstance(d.step, Degraded), d


def test_a_claim_backed_member_whose_pod_is_lost_restarts_on_its_claim() -> None:
    o = pod_lost(restoring(empty_dir=False, started=EVERYONE, formed=True), 0)
    d = decide(o)
    assert isinstance(d.step, CreatePod) and d.step.member == name(0)
    assert not d.step.restore and d.step.member_id == mid(0) and d.step.claim == name(0)


def test_a_claim_backed_member_restarts_on_its_claim_before_the_cluster_formed() -> None:
    """It answered before (recorded), its claim records nothing yet: its ID comes from the
    member list, so member-init still refuses an emptied volume."""
    o = restoring(empty_dir=False, started=(name(0),))
    o = replace(o, pvcs={n: replace(p, member_id=None) for n, p in o.pvcs.items()})
    for i in range(3):
        o = set_health(o, i, healthy=False, reachable=i == 0)
    o = replace(o, members=tuple(replace(m, client_urls=()) for m in o.members or ()))
    o = without_pod(o, 0)
    d = decide(o)
    assert isinstance(d.step, CreatePod) and d.step.member == name(0)
    assert not d.step.restore and d.step.member_id == mid(0)
    assert d.step.initial_cluster.state is ClusterState.EXISTING


def test_claims_recording_logs_prove_the_restored_cluster_formed_when_nobody_answers() -> None:
    """Every pod gone and no answer (e.g. the node restarted): the claims' records alone say
    the restored members ran and formed; each restarts on its claim, never from the snapshot."""
    o = replace(restoring(empty_dir=False), pods={}, members=None, member_health={})
    d = decide(o)
    assert d.step == RecordRollback(
        RollbackPhase.RESTORING, BACKUP, BACKUP_UID, EPOCH, started=EVERYONE, formed=True
    )
    o = replace(o, rollback=RollbackState(record=record(EVERYONE, formed=True)))
    d = decide(o)
    assert isinstance(d.step, CreatePod) and d.step.member == name(0)
    assert not d.step.restore and d.step.member_id == mid(0)


def test_a_claim_backed_member_whose_claim_was_lost_is_removed() -> None:
    o = pod_lost(restoring(empty_dir=False, started=EVERYONE, formed=True), 0)
    o = replace(o, pvcs={n: p for n, p in o.pvcs.items() if n != name(0)})
    assert decide(o).step == RemoveMember(mid(0), name(0))


def test_a_member_whose_volume_was_emptied_is_removed() -> None:
    o = restoring(empty_dir=False, started=EVERYONE, formed=True)
    o = unreachable(replace(o, pods={**o.pods, name(0): PodState(data_lost=True)}), 0)
    assert decide(o).step == RemoveMember(mid(0), name(0))


def test_the_formed_restored_cluster_completes_once_every_member_is_back() -> None:
    o = restoring(started=EVERYONE, formed=True)
    d = decide(o)
    assert isinstance(d.step, RecordRollback) and d.step.phase is RollbackPhase.COMPLETED
    assert d.step.started == EVERYONE and d.step.formed
    # A member that answers runs on its data, whatever an old init status of its pod says.
    o = replace(o, pods={**o.pods, name(0): replace(o.pods[name(0)], data_lost=True)})
    d = decide(o)
    assert isinstance(d.step, RecordRollback) and d.step.phase is RollbackPhase.COMPLETED


def test_a_member_never_seen_running_is_still_created_from_the_snapshot() -> None:
    o = replace(without_pod(restoring(started=(name(1),)), 0), members=None, member_health={})
    d = decide(o)
    assert isinstance(d.step, CreatePod) and d.step.member == name(0)
    assert d.step.restore and d.step.initial_cluster.state is ClusterState.NEW
    assert d.step.initial_cluster.token.endswith(f"-{EPOCH}")


def test_a_started_member_lost_before_forming_is_not_restored_while_others_may_form() -> None:
    o = replace(without_pod(restoring(started=(name(0),)), 0), members=None, member_health={})
    d = decide(o)
    assert isinstance(d.step, Wait) and d.reason is Reason.ROLLBACK_RESTORING
    assert "not" in d.message and name(0) in d.message


def test_the_other_members_are_still_created_while_a_started_one_is_lost() -> None:
    o = replace(restoring(started=(name(0),)), members=None, member_health={}, pods={})
    d = decide(o)
    assert isinstance(d.step, CreatePod) and d.step.member == name(1) and d.step.restore


def test_too_few_left_to_form_without_the_lost_members_is_degraded() -> None:
    o = restoring(started=(name(0), name(1)))
    o = replace(o, members=None, member_health={}, pods={name(2): o.pods[name(2)]})
    d = decide(o)
    assert isinstance(d.step, Degraded) and d.reason is Reason.MEMBER_DATA_LOST
    assert "1 of 3" in d.message


# --- the whole phase in a small world, a member lost at any round, a kill at any round -------


@dataclass
class World:
    """emptyDir members, etcd and status.rollback, changed only by applied steps and time."""

    pods: dict[str, PodState] = field(default_factory=dict)
    members: tuple[EtcdMember, ...] | None = None
    health: dict[int, MemberHealth] = field(default_factory=dict)
    record: RollbackRecord = field(default_factory=record)
    next_id: int = 0x500
    applied: list[Decision] = field(default_factory=list)

    def observed(self) -> Observed:
        o = cluster(3, empty_dir=True)
        return replace(
            o,
            members=self.members,
            member_health=dict(self.health) if self.members is not None else {},
            leader_id=None,
            pods=dict(self.pods),
            pvcs={},
            rollback=RollbackState(record=self.record),
        )

    def apply(self, d: Decision) -> None:
        self.applied.append(d)
        match d.step:
            case RecordRollback(phase=phase, epoch=epoch, started=started, formed=formed):
                self.record = RollbackRecord(
                    phase, BACKUP, BACKUP_UID, epoch, started=started, formed=formed
                )
            case Bootstrap(members=names, restore=True):
                for n in names:
                    self._pod(n)
            case CreatePod(member=n):
                self._pod(n)
            case RemoveMember(member_id=gone):
                assert self.members is not None
                self.members = tuple(m for m in self.members if m.id != gone)
                self.health.pop(gone, None)
            case AddLearner(member=n, peer_url=peer):
                assert self.members is not None
                self.next_id += 1
                self.members = (*self.members, EtcdMember(self.next_id, "", (peer,), (), True))
            case PromoteLearner(member_id=learner):
                assert self.members is not None
                self.members = tuple(
                    replace(m, is_learner=False) if m.id == learner else m for m in self.members
                )
            case RecordVolume():
                raise AssertionError("emptyDir members have no claim")
            case Wait() | Degraded() | InSync():
                pass
            case step:
                raise AssertionError(f"unexpected step {step}")

    def _pod(self, n: str) -> None:
        assert n not in self.pods, "a pod is created only where none exists"
        self.pods[n] = PodState(bootstrap_members=EVERYONE)

    def lose(self, ordinal: int) -> None:
        """The pod of `ordinal` and its emptyDir data are gone."""
        self.pods.pop(name(ordinal), None)
        for m in self.members or ():
            if m.peer_urls == (url(ordinal),):
                was_leader = self.health[m.id].is_leader
                self.health[m.id] = MemberHealth(reachable=False, healthy=False)
                if was_leader:  # the others elect a new leader
                    other = next(i for i, h in self.health.items() if h.healthy)
                    self.health[other] = replace(self.health[other], is_leader=True)

    def tick(self) -> None:
        """Time passes: a complete restored cluster forms; a learner with a pod catches up."""
        if self.members is None and all(n in self.pods for n in EVERYONE):
            members = []
            for i, n in enumerate(EVERYONE):
                self.next_id += 1
                members.append(EtcdMember(self.next_id, n, (url(i),), (url(i),), False))
                self.health[self.next_id] = health(leader=i == 0)
            self.members = tuple(members)
            return
        for m in self.members or ():
            i = next(i for i in range(3) if m.peer_urls == (url(i),))
            if not m.started and name(i) in self.pods:
                assert self.members is not None
                started = replace(m, name=name(i), client_urls=(url(i),))
                self.members = tuple(started if x.id == m.id else x for x in self.members)
                self.health[m.id] = health(index=INDEX)


def run(world: World, *, lose_after: int, kill_at: int | None = None) -> World:
    """Decide and apply until Completed; `lose_after` rounds after the restored cluster formed
    etcd-0 loses its pod and data; at round `kill_at` the operator dies before applying."""
    formed_at = None
    for round_ in range(60):
        if world.members is not None and formed_at is None:
            formed_at = round_
        if formed_at is not None and round_ - formed_at == lose_after:
            world.lose(0)
        d = decide(world.observed())
        if world.record.phase is RollbackPhase.COMPLETED and not acts(d.step):
            return world
        step = d.step
        if isinstance(step, CreatePod | Bootstrap) and step.restore:
            named = step.members if isinstance(step, Bootstrap) else (step.member,)
            assert not set(named) & set(world.record.started), f"restored again: {d}"
        if round_ != kill_at:
            world.apply(d)
        world.tick()
    raise AssertionError(f"no completion: {world.applied[-5:]}")


@pytest.mark.parametrize("lose_after", [0, 1, 2])
@pytest.mark.parametrize("kill_at", [None, *range(12)])
def test_a_member_lost_after_forming_is_replaced_and_the_rollback_completes(
    lose_after: int, kill_at: int | None
) -> None:
    world = run(World(), lose_after=lose_after, kill_at=kill_at)
    assert world.record.formed and world.record.started == EVERYONE
    assert world.members is not None and len(world.members) == 3
    assert not any(m.is_learner for m in world.members)
    steps = [d.step for d in world.applied]
    assert sum(isinstance(s, Bootstrap) for s in steps) == 1
    # Replaced as in a running cluster: removed, added back as a learner on a fresh pod.
    assert sum(isinstance(s, RemoveMember) for s in steps) == 1
    assert sum(isinstance(s, AddLearner) for s in steps) == 1
    created = [s for s in steps if isinstance(s, CreatePod)]
    assert [(s.member, s.restore, s.initial_cluster.state) for s in created] == [
        (name(0), False, ClusterState.EXISTING)
    ]
