"""Downgrades in the simulated world, whose etcd refuses a member below its cluster version:
3.6 -> 3.5 reaches every member once, the leader last, never costs quorum, and survives the
operator being killed after any call; setting the version back up cancels and rolls forward."""

from __future__ import annotations

import pytest

from etcd_operator.naming import member_name
from etcd_operator.planner import (
    CancelDowngrade,
    Degraded,
    EnableDowngrade,
    InSync,
    UpgradeMember,
)
from unit.support.world import World, WorldError

NEW, OLD = "3.6.0", "3.5.17"


def _upgraded(size: int) -> World:
    w = World(replicas=size, version=NEW)
    w.converge()
    w.tick()  # etcd settles its storage version
    assert w.cluster_minor == "3.6"
    return w


def _run(w: World, crash_at: int | None = None) -> None:
    for _ in range(300):
        d = w.round(crash_after=crash_at)
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_downgrade_reaches_every_member_once_leader_last(size: int, crash_at: int | None) -> None:
    w = _upgraded(size)
    leader = w.members[w.leader].slot if w.leader is not None else None
    ids = {m.id for m in w.voters()}
    w.version = OLD
    w.history.clear()
    _run(w, crash_at)
    assert sorted(w.restarted) == sorted(member_name("demo", i) for i in range(size))
    assert w.restarted[-1] == leader
    assert {m.id for m in w.voters()} == ids  # restarted on their volumes, as themselves
    assert w.cluster_minor == "3.5" and w.downgrade is None
    assert sum(isinstance(s, EnableDowngrade) for s in w.history) >= 1
    assert not any(isinstance(s, Degraded) for s in w.history)


def test_the_world_refuses_what_etcd_refuses() -> None:
    # The model is honest: restarting a member with 3.5 without the downgrade fails.
    w = _upgraded(3)
    name = member_name("demo", 2)
    with pytest.raises(WorldError, match="below the cluster version"):
        w._check_version_accepted(name, OLD)


@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_version_back_up_mid_downgrade_cancels_and_rolls_forward(crash_at: int | None) -> None:
    w = _upgraded(3)
    w.version = OLD
    for _ in range(100):
        d = w.round()
        if isinstance(d.step, UpgradeMember) and any(
            p.version == OLD for p in w.pods.values() if not p.deleting
        ):
            break
    assert w.downgrade == "3.5"
    w.version = NEW
    w.history.clear()
    _run(w, crash_at)
    assert any(isinstance(s, CancelDowngrade) for s in w.history)
    assert w.downgrade is None and w.cluster_minor == "3.6"
    assert not any(isinstance(s, Degraded) for s in w.history)
