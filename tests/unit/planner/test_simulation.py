"""Crash-resume simulation: the planner drives a model world (unit.support.world) through scale,
heal and upgrade sequences while the operator is killed between API calls and faults hit
members. The world raises on any call etcd would reject, any duplicate member, any bootstrap of
a formed cluster and any operator call that takes a cluster with quorum below quorum."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from etcd_operator.naming import member_name
from etcd_operator.planner import (
    AddLearner,
    Bootstrap,
    Degraded,
    InSync,
    MoveLeader,
    PvcRetention,
    Reason,
    RemoveMember,
)
from unit.support.world import World, WPvc

SEQUENCE = [3, 5, 3, 1, 3]
VERSIONS = ["3.5.17", "3.5.18", "3.6.0"]


@pytest.mark.parametrize("policy", list(PvcRetention))
def test_scale_sequence_converges_one_member_at_a_time(policy: PvcRetention) -> None:
    w = World(replicas=SEQUENCE[0], policy=policy)
    w.converge()
    w.assert_settled()
    for replicas in SEQUENCE[1:]:
        w.replicas = replicas
        w.history.clear()
        w.converge()
        w.assert_settled()
        membership_changes = [s for s in w.history if isinstance(s, AddLearner | RemoveMember)]
        assert len(membership_changes) >= abs(len(w.voters()) - replicas)
    assert sum(isinstance(s, Bootstrap) for s in w.history) == 0


@pytest.mark.parametrize("crash_at", range(4))
def test_crash_after_every_call_of_every_step_still_converges(crash_at: int) -> None:
    """The operator dies after `crash_at` calls of every step that has more calls than that."""
    w = World(replicas=3)
    for replicas in [*SEQUENCE, 4, 2]:
        w.replicas = replicas
        for _ in range(200):
            d = w.round(crash_after=crash_at)
            if isinstance(d.step, InSync):
                break
        w.converge()  # and then a clean run finishes whatever remains
        w.assert_settled()


def test_scale_in_of_the_leader_moves_leadership_first() -> None:
    w = World(replicas=3)
    w.converge()
    w.leader = max(m.id for m in w.voters() if m.slot == member_name("demo", 2))
    w.replicas = 2
    steps = [d.step for d in w.converge()]
    assert isinstance(steps[0], MoveLeader)
    assert isinstance(steps[1], RemoveMember)
    w.assert_settled()


def test_wiped_member_is_replaced_under_a_new_id() -> None:
    w = World(replicas=3)
    w.converge()
    victim = w.slot_member(member_name("demo", 1))
    assert victim is not None
    w.fault_wipe(victim.slot)
    w.fault_kill_pod(victim.slot)
    w.converge()
    w.assert_settled()
    replaced = w.slot_member(member_name("demo", 1))
    assert replaced is not None and replaced.id != victim.id


def test_all_pods_deleted_recovers_with_the_same_members() -> None:
    w = World(replicas=3)
    w.converge()
    before = {m.id for m in w.voters()}
    for name in list(w.pods):
        w.fault_kill_pod(name)
    w.converge()
    w.assert_settled()
    assert {m.id for m in w.voters()} == before


def test_outage_with_a_wiped_volume_replaces_that_member_and_never_starts_it_empty() -> None:
    # Every pod goes at once, and one disk comes back empty: no member answers, so only the
    # records on the claims can tell that member-init must find a log (the world raises if a
    # member that voted starts empty under its old ID).
    for victim in range(3):
        w = World(replicas=3)
        w.converge()
        before = w.slot_member(member_name("demo", victim))
        assert before is not None
        w.fault_stop_all()
        w.fault_wipe(before.slot)
        w.converge()
        w.assert_settled()
        after = w.slot_member(before.slot)
        assert after is not None and after.id != before.id


def test_lost_status_never_bootstraps_a_formed_cluster_again() -> None:
    w = World(replicas=3)
    w.converge()
    w.history.clear()
    w.fault_lose_status()
    w.fault_stop_all()
    w.converge()
    w.assert_settled()
    assert not any(isinstance(s, Bootstrap) for s in w.history)


def test_scaling_in_and_out_under_retain_keeps_every_removed_members_volume() -> None:
    w = World(replicas=5, policy=PvcRetention.RETAIN)
    w.converge()
    removed = {c: p.data for c, p in w.pvcs.items() if p.member in ("demo-3", "demo-4")}
    w.replicas = 3
    w.converge()
    w.replicas = 5
    w.converge()
    w.assert_settled()
    for claim, data in removed.items():
        assert w.pvcs[claim].data == data and w.pvcs[claim].retired, claim
    assert {w.pods[n].claim for n in ("demo-3", "demo-4")} == {"demo-3-1", "demo-4-1"}


def test_an_earlier_clusters_claims_are_reported_and_never_touched() -> None:
    w = World(replicas=3)
    for i in range(3):
        w.pvcs[f"demo-{i}"] = WPvc(member=f"demo-{i}", data=0x77 + i, uid="uid-0", recorded=0x77)
    for _ in range(10):
        d = w.round()
        assert d.step == Degraded(Reason.FOREIGN_VOLUME)
    assert all(w.pvcs[f"demo-{i}"].data == 0x77 + i for i in range(3))
    assert not w.pods


def test_majority_of_volumes_lost_is_never_papered_over() -> None:
    w = World(replicas=3)
    w.converge()
    for i in (0, 1):
        w.fault_lose_volume(member_name("demo", i))
    for _ in range(30):
        d = w.round()
        assert not isinstance(d.step, Bootstrap)
    assert d.step == Degraded(Reason.QUORUM_LOST)


class CrashingOperator(RuleBasedStateMachine):
    """Random scale changes, upgrades, spec changes, faults, node drains and operator kills, on
    volumes or emptyDirs; at the end it converges."""

    @initialize(
        replicas=st.integers(1, 5),
        policy=st.sampled_from(list(PvcRetention)),
        empty_dir=st.booleans(),
    )
    def start(self, replicas: int, policy: PvcRetention, empty_dir: bool) -> None:
        self.world = World(replicas=replicas, policy=policy, empty_dir=empty_dir)

    @rule(replicas=st.integers(1, 7))
    def scale(self, replicas: int) -> None:
        self.world.replicas = replicas

    @rule(version=st.sampled_from(VERSIONS))
    def upgrade(self, version: str) -> None:
        """Users move forward (downgrades across minors are refused by design)."""
        self.world.version = max(self.world.version, version, key=VERSIONS.index)

    @rule()
    def change_spec(self) -> None:
        """E.g. a new quota: every pod is now outdated and rolls."""
        self.world.template += 1

    @precondition(lambda self: self.world.bootstrapped)
    @rule(ordinal=st.integers(0, 6))
    def drain(self, ordinal: int) -> None:
        """A node drain: goes through the disruption budget, like the operator's restarts."""
        self.world.fault_drain(member_name("demo", ordinal))

    @rule(rounds=st.integers(1, 6), crashes=st.lists(st.integers(0, 3), max_size=6))
    def reconcile(self, rounds: int, crashes: list[int]) -> None:
        for i in range(rounds):
            self.world.round(crash_after=crashes[i] if i < len(crashes) else None)

    @precondition(lambda self: self.world.bootstrapped)
    @rule(ordinal=st.integers(0, 6), kind=st.sampled_from(["kill", "wipe", "lose"]))
    def fault(self, ordinal: int, kind: str) -> None:
        name = member_name("demo", ordinal)
        if not self.world.recoverable_without(name):
            return
        match kind:
            case "kill":
                self.world.fault_kill_pod(name)
            case "wipe" if self.world.empty_dir:
                # An emptyDir loses its data with its pod, not under a running one (no record
                # on a claim could tell member-init what to expect there).
                self.world.fault_kill_pod(name)
            case "wipe":
                self.world.fault_wipe(name)
            case _:
                self.world.fault_lose_volume(name)

    # Not for emptyDir: with every pod gone all data is gone, nothing can bring it back.
    @precondition(lambda self: self.world.bootstrapped and not self.world.empty_dir)
    @rule(ordinal=st.integers(0, 6), wipe=st.booleans())
    def outage(self, ordinal: int, wipe: bool) -> None:
        """Every pod goes at once; maybe one disk comes back empty meanwhile."""
        name = member_name("demo", ordinal)
        if wipe and self.world.recoverable_without(name):
            self.world.fault_wipe(name)
        self.world.fault_stop_all()

    @precondition(lambda self: any(p.recorded for p in self.world.pvcs.values()))
    @rule()
    def lose_status(self) -> None:
        self.world.fault_lose_status()

    @invariant()
    def one_member_per_name(self) -> None:
        slots = [m.slot for m in self.world.members.values()]
        assert len(slots) == len(set(slots))

    def teardown(self) -> None:
        w = getattr(self, "world", None)
        if w is None:
            return
        replicas = w.replicas
        if replicas < 3:
            # Fewer than 3 voters cannot restart a member without losing quorum, so version
            # changes wait (Degraded/UpgradeBlocked) until there are 3: as a user would do.
            w.replicas = 3
            w.converge()
            w.replicas = replicas
        w.converge()
        w.assert_settled()


CrashingOperator.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_crashing_operator_converges = CrashingOperator.TestCase


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_rolling_upgrade_restarts_each_member_once_leader_last(
    size: int, crash_at: int | None
) -> None:
    """Patch up, minor up, patch down: every member restarted exactly once per change,
    followers first, the leader last (after a leadership move), the operator killed after
    `crash_at` calls of every step."""
    w = World(replicas=size)
    w.converge()
    for version in ["3.5.18", "3.6.0", "3.6.1", "3.6.0"]:
        w.version = version
        w.restarted.clear()
        w.history.clear()
        leader = w.members[w.leader].slot if w.leader is not None else None
        for _ in range(200):
            d = w.round(crash_after=crash_at)
            if isinstance(d.step, InSync):
                break
        w.converge()
        w.assert_settled()
        assert sorted(w.restarted) == sorted(member_name("demo", i) for i in range(size))
        if size != 2:  # two voters re-elect after every restart: any member may lead
            assert w.restarted[-1] == leader
        if size > 2:
            assert any(isinstance(s, MoveLeader) for s in w.history)
        assert not any(isinstance(s, Degraded) for s in w.history)


def test_upgrade_that_skips_a_minor_is_refused_and_changes_nothing() -> None:
    w = World(replicas=3)
    w.converge()
    w.version = "3.7.0"
    d = w.round()
    assert d.step == Degraded(Reason.UPGRADE_BLOCKED)
    assert "skip a minor" in d.message
    assert not w.restarted


@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_two_of_three_wiped_manual_then_rebuilt_from_the_survivor(crash_at: int | None) -> None:
    """Manual changes nothing; FromSurvivor forces the survivor exactly once, even with the
    operator killed after any call of any step, and the cluster comes back with three members
    around the survivor's ID."""
    w = World(replicas=3)
    w.converge()
    survivor = w.slot_member(member_name("demo", 0))
    assert survivor is not None
    for lost in (member_name("demo", 1), member_name("demo", 2)):
        w.fault_wipe(lost)
        w.fault_kill_pod(lost)
    claims = dict(w.pvcs)
    for _ in range(20):
        d = w.round()
    assert isinstance(d.step, Degraded) and "for good" in d.message, d
    assert w.pvcs == claims and w.forced_starts == 0
    w.quorum_loss = "FromSurvivor"
    for i in range(200):
        # Killed after `crash_at` calls in every other round: each step is resumed from the
        # state a partial one left.
        d = w.round(crash_after=crash_at if i % 2 == 0 else None)
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()
    assert w.forced_starts == 1
    assert survivor.id in w.members
    assert not any(p.forced for p in w.pods.values())
    assert w.record is not None and w.record.done
