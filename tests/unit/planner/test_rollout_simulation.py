"""Rollouts in the simulated world: spec changes and upgrades reach every member once, emptyDir
members are replaced without losing quorum or data, a drain during a rollout never takes a
second member down, and the operator may be killed after any call."""

from __future__ import annotations

import pytest

from etcd_operator.naming import member_name
from etcd_operator.planner import (
    Degraded,
    InSync,
    MoveLeader,
    Reason,
    RemoveMember,
    UpgradeMember,
)
from unit.support.world import World


def _run(w: World, crash_at: int | None = None, drain: str | None = None) -> None:
    """Reconcile until in sync, killing the operator after `crash_at` calls of every step and,
    when `drain` is set, trying to drain that member's node before every round."""
    for _ in range(300):
        if drain is not None:
            w.fault_drain(drain)
        d = w.round(crash_after=crash_at)
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()


def _names(size: int) -> list[str]:
    return [member_name("demo", i) for i in range(size)]


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_spec_change_restarts_every_member_once_leader_last(
    size: int, crash_at: int | None
) -> None:
    w = World(replicas=size)
    w.converge()
    leader = w.members[w.leader].slot if w.leader is not None else None
    ids = {m.id for m in w.voters()}
    w.template += 1
    w.history.clear()
    _run(w, crash_at)
    assert sorted(w.restarted) == _names(size)
    if size != 2:  # two voters re-elect after every restart: any member may lead
        assert w.restarted[-1] == leader
    assert {m.id for m in w.voters()} == ids  # restarted on their volumes, as themselves
    assert not any(isinstance(s, Degraded) for s in w.history)


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_empty_dir_members_are_replaced_one_at_a_time_without_losing_quorum(
    size: int, crash_at: int | None
) -> None:
    """The world raises if any call loses quorum; every member comes back under a new ID."""
    w = World(replicas=size, empty_dir=True)
    w.converge()
    before = {m.slot: m.id for m in w.voters()}
    for version in ["3.5.18", "3.6.0"]:
        w.version = version
        w.history.clear()
        _run(w, crash_at)
        assert not any(isinstance(s, Degraded) for s in w.history)
    after = {m.slot: m.id for m in w.voters()}
    assert set(after) == set(before)
    assert all(after[n] != before[n] for n in before)


@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_two_empty_dir_members_are_replaced_by_removing_first_never_losing_quorum(
    crash_at: int | None,
) -> None:
    w = World(replicas=2, empty_dir=True)
    w.converge()
    before = {m.slot: m.id for m in w.voters()}
    w.template += 1
    w.history.clear()
    _run(w, crash_at)
    after = {m.slot: m.id for m in w.voters()}
    assert all(after[n] != before[n] for n in before)
    assert not any(isinstance(s, UpgradeMember) for s in w.history)
    assert {s.member_id for s in w.history if isinstance(s, RemoveMember)} == set(before.values())
    assert any(isinstance(s, MoveLeader) for s in w.history)


def test_one_empty_dir_member_is_never_restarted() -> None:
    w = World(replicas=1, empty_dir=True)
    w.converge()
    member = next(iter(w.members.values()))
    for change in ("version", "template"):
        if change == "version":
            w.version = "3.5.18"
        else:
            w.version, w.template = "3.5.17", w.template + 1
        for _ in range(5):
            d = w.round()
            assert d.step == Degraded(Reason.RESTART_WOULD_LOSE_DATA)
            assert "Scale to 3 members" in d.message
        assert w.members == {member.id: member} and not w.restarted
    # The way out the message names: scale to 3, and the rollout then goes through.
    w.replicas = 3
    w.converge()
    w.replicas = 1
    w.converge()
    w.assert_settled()


@pytest.mark.parametrize("empty_dir", [False, True])
@pytest.mark.parametrize("victim", [0, 1, 2])
def test_a_drain_during_a_rollout_never_takes_a_second_member_down(
    empty_dir: bool, victim: int
) -> None:
    """A node drain hammers one member's pod while the rollout runs: the disruption budget
    lets at most one member be down, whoever asks first, and the rollout still finishes."""
    w = World(replicas=3, empty_dir=empty_dir)
    w.converge()
    w.version = "3.5.18"
    w.template += 1
    for _ in range(300):
        w.fault_drain(member_name("demo", victim))
        down = sum(not w.healthy(m) for m in w.voters())
        assert down <= 1, w.members
        d = w.round()
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()


def test_a_refused_eviction_is_retried_later() -> None:
    w = World(replicas=3)
    w.converge()
    w.fault_kill_pod(member_name("demo", 0))  # e.g. a drain took it: PDB at its limit
    w.template += 1
    d = w.round()  # restores demo-0 first: a member down means no rollout step yet
    assert not isinstance(d.step, UpgradeMember)
    w.converge()
    w.assert_settled()
