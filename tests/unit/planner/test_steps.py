"""The step vocabulary: which steps act, which only report."""

from __future__ import annotations

import typing

from etcd_operator.planner import Action, Report, Step, action_of, acts, pdb_voters
from unit.support.observed import cluster, fresh, member, replace


def _types(union: object) -> set[type]:
    return set(typing.get_args(union))


def test_every_step_either_acts_or_reports() -> None:
    assert _types(Step) == _types(Action) | _types(Report)
    assert not _types(Action) & _types(Report)


def test_acts_is_true_exactly_for_actions() -> None:
    from etcd_operator.planner import DeletePod, InSync, MarkBootstrapped

    step = DeletePod("etcd-3")
    assert acts(step) and action_of(step) is step
    assert not acts(InSync()) and not acts(MarkBootstrapped())


def test_the_disruption_budget_protects_the_voters_listed_now() -> None:
    assert pdb_voters(cluster(5, replicas=3)) == 5  # scaling in: the larger quorum holds
    with_learner = replace(
        cluster(3), members=(*(cluster(3).members or ()), member(3, learner=True))
    )
    assert pdb_voters(with_learner) == 3
    assert pdb_voters(fresh(3)) == 3  # no member answered yet: spec.replicas
