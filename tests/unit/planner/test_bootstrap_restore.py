"""A cluster bootstrapped from a snapshot: only its initial members restore it."""

from __future__ import annotations

from dataclasses import replace

from etcd_operator.planner import (
    Bootstrap,
    ClusterState,
    CreatePod,
    EtcdMember,
    Observed,
    PodState,
    decide,
)
from unit.support.observed import URLS, cluster, fresh, name


def test_bootstrap_carries_the_restore_when_the_spec_asks_for_it() -> None:
    step = decide(fresh(3, restore=True)).step
    assert isinstance(step, Bootstrap)
    assert step.restore
    assert step.initial_cluster.state is ClusterState.NEW
    assert not decide_step_restores(fresh(3))


def decide_step_restores(o: Observed) -> bool:
    step = decide(o).step
    return isinstance(step, Bootstrap | CreatePod) and step.restore


def test_an_interrupted_bootstrap_resumes_its_missing_member_from_the_snapshot() -> None:
    o = fresh(3, restore=True)
    members = (name(0), name(1), name(2))
    o = replace(o, pods={n: PodState(ready=False, bootstrap_members=members) for n in members[:2]})
    step = decide(o).step
    assert isinstance(step, CreatePod)
    assert step.member == name(2)
    assert step.restore and step.initial_cluster.state is ClusterState.NEW


def test_members_added_to_a_formed_cluster_never_restore() -> None:
    # Scale-out of a restored cluster: the new member is added as a learner, then its pod
    # starts empty with state existing and copies the data from the cluster.
    o = cluster(3, replicas=4, restore=True)
    assert not decide_step_restores(o)
    learner = EtcdMember(0x999, "", (URLS[name(3)],), (), True)
    step = decide(replace(o, members=(*(o.members or ()), learner))).step
    assert isinstance(step, CreatePod)
    assert step.member == name(3)
    assert step.initial_cluster.state is ClusterState.EXISTING
    assert not step.restore


def test_a_lost_member_of_a_restored_cluster_comes_back_on_its_own_volume() -> None:
    # Every pod gone after the cluster formed: pods restart on their volumes, never restored.
    o = replace(cluster(3, restore=True), members=None, pods={})
    step = decide(o).step
    assert isinstance(step, CreatePod)
    assert step.member_id is not None
    assert not step.restore
