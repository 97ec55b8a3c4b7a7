"""Quorum lost for good: Manual reports, FromSurvivor rebuilds once from the most up-to-date
survivor (planner/recovery.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcd_operator.naming import url_address
from etcd_operator.planner import (
    CreatePod,
    Degraded,
    EndForcedStart,
    ForcedStart,
    ForceNewCluster,
    LocalView,
    Observed,
    Reason,
    RecordRollback,
    RollbackPhase,
    Wait,
    decide,
    quorum,
)
from etcd_operator.planner.model import BackupFacts, RollbackRequest, RollbackState
from etcd_operator.planner.recovery import lost_for_good
from unit.planner.test_properties import observed_states
from unit.support.observed import (
    NAME,
    UID,
    cluster,
    member,
    mid,
    name,
    pod,
    pvc,
    replace,
    spec,
    without_pod,
    without_pvc,
)
from unit.support.rollback import BACKUP, backup, verified

TERM = 5


def view(ordinal: int, *, term: int = TERM, index: int = 1000, n: int = 3) -> LocalView:
    return LocalView(mid(ordinal), tuple(member(i) for i in range(n)), term, index, index)


def lost_two(mode: str = "Manual", **views: LocalView) -> Observed:
    """3 members; etcd-1 and etcd-2 had their volumes wiped (member-init refuses them), etcd-0
    runs alone without quorum: no member list answers."""
    o = spec(cluster(3), quorum_loss=mode)
    o = pod(o, 1, data_lost=True, ready=False)
    o = pod(o, 2, data_lost=True, ready=False)
    o = pod(o, 0, ready=False)
    return replace(
        o, members=None, member_health={}, leader_id=None, local_views=views or {name(0): view(0)}
    )


def test_manual_reports_who_survives_and_what_to_do_and_changes_nothing() -> None:
    d = decide(lost_two())
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "etcd-1: its volume no longer holds its log" in d.message
    assert "etcd-2: its volume no longer holds its log" in d.message
    assert f"etcd-0 (member {mid(0):x}, raft term {TERM}, index 1000)" in d.message
    assert "FromSurvivor to rebuild from etcd-0" in d.message
    assert "EtcdRestore" in d.message
    assert "Nothing was changed" in d.message


def test_from_survivor_forces_the_survivor_once() -> None:
    d = decide(lost_two("FromSurvivor"))
    assert isinstance(d.step, ForceNewCluster)
    assert (d.step.member, d.step.member_id, d.step.lost) == (name(0), mid(0), (name(1), name(2)))
    assert "writes" not in d.message or "lost" in d.message


def test_from_latest_backup_without_a_backup_is_manual_and_says_so() -> None:
    # The shell offers the newest backup as o.rollback.recovery; none exists here.
    d = decide(lost_two("FromLatestBackup"))
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "FromLatestBackup found no Succeeded EtcdBackup" in d.message


def _earlier(name: str, hour: int) -> BackupFacts:
    """A Succeeded backup taken of an earlier EtcdCluster of the same name (another UID)."""
    completed = datetime(2026, 11, 30, hour, tzinfo=UTC)
    return backup(name=name, uid=f"uid-{name}", cluster_uid="uid-gone", completed_at=completed)


def test_from_latest_backup_names_the_earlier_clusters_backups_it_skipped() -> None:
    """A cluster deleted and created again under the same name: the old one's backups are
    never restored unasked, and the message says which were skipped and how to take one."""
    earlier = tuple(_earlier(f"old-{h}", h) for h in (1, 4, 2, 3))
    o = replace(lost_two("FromLatestBackup"), rollback=RollbackState(earlier=earlier))
    d = decide(o)
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "FromLatestBackup found no Succeeded EtcdBackup of this cluster" in d.message
    assert "EtcdBackup old-4, old-3, old-2 and 1 more" in d.message  # newest first
    assert f"earlier EtcdCluster {NAME} (UID uid-gone; this one is {UID})" in d.message
    assert "allowOtherCluster: true" in d.message and "Nothing was changed" in d.message
    assert lost_for_good(d.message)


def test_no_survivor_under_from_latest_backup_says_why_no_backup_was_restored() -> None:
    o = pod(lost_two("FromLatestBackup"), 0, data_lost=True)
    o = replace(o, local_views={}, rollback=RollbackState(earlier=(_earlier("old", 1),)))
    d = decide(o)
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "no member survives with data" in d.message
    assert "FromLatestBackup found no Succeeded EtcdBackup of this cluster" in d.message
    assert "It skipped EtcdBackup old, taken of an earlier EtcdCluster" in d.message
    assert lost_for_good(d.message)
    # Under another mode the backups are not its business.
    d = decide(spec(o, quorum_loss="Manual"))
    assert "FromLatestBackup" not in d.message and "EtcdBackup old" not in d.message


def test_restarting_members_are_not_lost() -> None:
    """Two members down but their volumes intact (pods restarting): a quorum may come back."""
    o = lost_two("FromSurvivor")
    o = pod(o, 1, data_lost=False)
    d = decide(o)
    assert not isinstance(d.step, ForceNewCluster)
    assert "quorum lost for good" not in d.message


def test_a_lost_claim_counts_as_lost_but_a_missing_pod_does_not() -> None:
    o = without_pvc(without_pod(lost_two("FromSurvivor"), 1), 1)
    assert isinstance(decide(o).step, ForceNewCluster)
    o = without_pod(lost_two("FromSurvivor"), 1)  # its claim is there: it is restarted first
    assert isinstance(decide(o).step, CreatePod)


def test_the_most_up_to_date_survivor_is_chosen() -> None:
    """5 members, 3 lost: of the two survivors the one with the higher term, then index."""
    o = spec(cluster(5), quorum_loss="FromSurvivor")
    for i in (0, 1, 4):
        o = pod(o, i, data_lost=True, ready=False)
    members = tuple(member(i) for i in range(5))
    views = {
        name(2): LocalView(mid(2), members, 6, 900, 900),
        name(3): LocalView(mid(3), members, 5, 2000, 2000),
    }
    o = replace(o, members=None, member_health={}, leader_id=None, local_views=views)
    step = decide(o).step
    assert isinstance(step, ForceNewCluster) and step.member == name(2)
    views[name(2)] = LocalView(mid(2), members, 5, 1999, 1999)
    step = decide(replace(o, local_views=views)).step
    assert isinstance(step, ForceNewCluster) and step.member == name(3)


def test_a_survivor_that_does_not_answer_yet_is_waited_for() -> None:
    o = spec(cluster(5), quorum_loss="FromSurvivor")
    for i in (0, 1, 4):
        o = pod(o, i, data_lost=True, ready=False)
    members = tuple(member(i) for i in range(5))
    views = {name(2): LocalView(mid(2), members, 6, 900, 900)}
    o = replace(o, members=None, member_health={}, leader_id=None, local_views=views)
    d = decide(o)
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "waits until etcd-3" in d.message


def test_no_survivor_is_manual_and_says_so() -> None:
    o = pod(lost_two("FromSurvivor"), 0, data_lost=True)
    d = decide(replace(o, local_views={}))
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "no member survives with data" in d.message


def test_empty_dir_survivor_is_not_restarted() -> None:
    o = spec(lost_two("FromSurvivor"), empty_dir=True)
    d = decide(replace(o, pvcs={}))
    assert d.step == Degraded(Reason.QUORUM_LOST)
    assert "emptyDir" in d.message


def test_resumes_after_a_kill_between_record_and_pod() -> None:
    """Status records the start and the survivor's pod is gone: it comes back flagged, not as a
    plain restart (which would find quorum lost again)."""
    o = without_pod(lost_two("FromSurvivor"), 0)
    o = replace(o, local_views={}, forced_start=ForcedStart(name(0), mid(0)))
    step = decide(o).step
    assert isinstance(step, ForceNewCluster) and step.member == name(0)
    assert step.member_id == mid(0)


def test_flagged_pod_is_never_forced_again_and_is_rebuilt_once_alone() -> None:
    o = pod(lost_two("FromSurvivor"), 0, forced=True)
    o = replace(o, local_views={}, forced_start=ForcedStart(name(0), mid(0)))
    assert decide(o).step == Wait(Reason.FORCING_NEW_CLUSTER)
    alone = replace(o, members=(member(0),), member_health={})
    assert decide(alone).step == EndForcedStart(name(0), mid(0))


def test_after_the_rebuild_the_others_rejoin_as_new_members() -> None:
    """Recovered: the survivor alone, the lost pods are strays and go, then claims retire and
    new learners are added (the ordinary heal and scale rules)."""
    o = cluster(1, replicas=3)
    o = pod(o, 1, data_lost=True, ready=False)
    o = pvc(o, 1, member_id=mid(1))
    o = replace(o, forced_start=ForcedStart(name(0), mid(0), done=True))
    assert decide(o).reason is Reason.DELETE_STRAY_POD


# --- properties ------------------------------------------------------------------------


def _lost(o: Observed, ordinal_name: str, member_id: int) -> bool:
    if ordinal_name in o.local_views:
        return False
    p, c = o.pods.get(ordinal_name), o.pvcs.get(ordinal_name)
    if p is not None and p.data_lost:
        return True
    if o.spec.empty_dir:
        return p is None
    return c is None or c.deleting or (c.member_id is not None and c.member_id != member_id)


PROPERTY_SETTINGS = settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@PROPERTY_SETTINGS
@given(observed_states())
def test_force_only_when_a_majority_is_lost_for_good_and_at_most_once(o: Observed) -> None:
    step = decide(o).step
    if not isinstance(step, ForceNewCluster):
        return
    # Never while a pod built with the flag exists (that pod's start is the one force).
    assert not any(p.forced for p in o.pods.values())
    record = o.forced_start
    if record is not None and not record.done:
        assert step.member == record.member and step.member_id == record.member_id
        return  # resuming the recorded start: judged when it was first chosen
    assert o.members is None and o.spec.quorum_loss == "FromSurvivor" and not o.spec.empty_dir
    by_address = {url_address(u): n for n, u in o.expected_peer_urls.items()}
    newest = max(o.local_views.values(), key=lambda v: (v.raft_term, v.raft_index))
    voters = [m for m in newest.members if not m.is_learner]
    names = {m.id: by_address.get(url_address(m.peer_urls[0])) for m in voters}
    alive = [m for m in voters if (n := names[m.id]) is None or not _lost(o, n, m.id)]
    assert len(alive) < quorum(len(voters)), "a quorum of members not lost may come back"
    # Every named survivor reported, and the chosen one is the most up-to-date of them.
    chosen = o.local_views[step.member]
    assert chosen.member_id == step.member_id
    for m in alive:
        n = names[m.id]
        if n is None:
            continue
        assert n in o.local_views and o.local_views[n].member_id == m.id
        other = o.local_views[n]
        assert (other.raft_term, other.raft_index) <= (chosen.raft_term, chosen.raft_index)


@PROPERTY_SETTINGS
@given(observed_states())
def test_manual_never_rebuilds(o: Observed) -> None:
    manual = dataclasses.replace(o.spec, quorum_loss="Manual")
    o = dataclasses.replace(o, spec=manual, forced_start=None)
    o = dataclasses.replace(
        o, pods={n: dataclasses.replace(p, forced=False) for n, p in o.pods.items()}
    )
    assert not isinstance(decide(o).step, ForceNewCluster | EndForcedStart)


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([3, 5, 7]),
    data=st.data(),
)
def test_the_survivor_chosen_is_the_most_up_to_date(size: int, data: st.DataObject) -> None:
    """Any majority lost for good, the rest reporting any raft positions: the chosen one has
    the highest (term, index); while a quorum is not lost nothing is forced."""
    lost = data.draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=size - 1))
    o = spec(cluster(size), quorum_loss="FromSurvivor")
    members = tuple(member(i) for i in range(size))
    views = {}
    for i in range(size):
        o = pod(o, i, ready=False, data_lost=i in lost)
        if i not in lost:
            term = data.draw(st.integers(2, 4))
            index = data.draw(st.integers(100, 110))
            views[name(i)] = LocalView(mid(i), members, term, index, index)
    o = replace(o, members=None, member_health={}, leader_id=None, local_views=views)
    step = decide(o).step
    if size - len(lost) >= quorum(size):
        assert not isinstance(step, ForceNewCluster)
        return
    assert isinstance(step, ForceNewCluster)
    best = max((v.raft_term, v.raft_index) for v in views.values())
    chosen = views[step.member]
    assert (chosen.raft_term, chosen.raft_index) == best


def test_from_latest_backup_with_a_backup_recreates_the_cluster_from_it() -> None:
    """The survivor's own view proves the loss; the newest backup offered by the shell is
    verified, then the rollback's start is recorded (planner/rollback.py)."""
    offered = RollbackState(
        backup=backup(), recovery=RollbackRequest(BACKUP, cause="QuorumLoss"), check=verified()
    )
    d = decide(replace(lost_two("FromLatestBackup"), rollback=offered))
    assert isinstance(d.step, RecordRollback) and d.step.cause == "QuorumLoss"
    assert d.step.phase is RollbackPhase.STOPPING
