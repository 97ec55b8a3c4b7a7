"""The quorum-aware PodDisruptionBudget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.planner import quorum
from etcd_operator.resources import pod_disruption_budget
from unit.support.clusters import make_cluster


@pytest.mark.parametrize(
    ("replicas", "min_available"),
    [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4), (8, 5), (9, 5)],
)
def test_min_available_is_the_quorum(replicas: int, min_available: int) -> None:
    pdb = pod_disruption_budget(make_cluster(replicas=replicas)).to_dict()
    assert pdb["spec"]["minAvailable"] == min_available
    assert "maxUnavailable" not in pdb["spec"]


@given(st.integers(min_value=1, max_value=9), st.integers(min_value=0, max_value=9))
def test_evictions_allowed_never_break_quorum(voters: int, already_down: int) -> None:
    """What the disruption controller allows, given only ready voters count as healthy."""
    min_available = pod_disruption_budget(make_cluster(replicas=voters)).to_dict()["spec"][
        "minAvailable"
    ]
    healthy = max(voters - already_down, 0)
    allowed = max(healthy - min_available, 0)
    assert healthy - allowed >= min(quorum(voters), healthy)
    if healthy >= quorum(voters):
        assert healthy - allowed >= quorum(voters)


def test_current_voters_override_the_spec_during_scale_in() -> None:
    pdb = pod_disruption_budget(make_cluster(replicas=3), voting_members=5).to_dict()
    assert pdb["spec"]["minAvailable"] == 3


def test_pdb_selects_member_pods_and_is_owned_by_the_cluster() -> None:
    pdb = pod_disruption_budget(make_cluster()).to_dict()
    assert pdb["metadata"]["name"] == "demo"
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "member"
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["metadata"]["ownerReferences"][0]["kind"] == "EtcdCluster"
