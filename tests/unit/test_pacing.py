"""A broken cluster backs off and stays quiet; a healthy one is paced by what it does."""

from __future__ import annotations

import pytest

from etcd_operator import pacing
from etcd_operator.pacing import (
    EventNote,
    EventType,
    Outcome,
    Pace,
    after_round,
    backoff,
)
from etcd_operator.planner import (
    AddLearner,
    Decision,
    Degraded,
    InSync,
    Paused,
    Reason,
    RemoveMember,
    Wait,
)

ADD = Decision(
    AddLearner("demo-3", "http://demo-3:2380"), Reason.SCALE_OUT, "add demo-3 as a learner"
)
DEGRADED = Decision(
    Degraded(Reason.QUORUM_LOST), Reason.QUORUM_LOST, "1 of 3 voting members healthy"
)
IN_SYNC = Decision(InSync(), Reason.IN_SYNC, "3 members in sync")
WAIT = Decision(
    Wait(Reason.LEARNER_CATCHING_UP), Reason.LEARNER_CATCHING_UP, "demo-3 is catching up"
)
PAUSED = Decision(Paused(), Reason.PAUSED, "reconciliation is paused (spec.paused)")


def _rounds(
    outcomes: list[Outcome], pace: Pace | None = None
) -> tuple[Pace, list[list[EventNote]], list[float]]:
    pace = pace or Pace()
    posted, delays = [], []
    for outcome in outcomes:
        pace, notes, delay = after_round(pace, outcome)
        posted.append(notes)
        delays.append(delay)
    return pace, posted, delays


def test_backoff_doubles_from_five_seconds_and_stops_at_two_minutes() -> None:
    assert [backoff(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 120, 120, 120]
    assert backoff(10_000) == pacing.MAX_BACKOFF
    with pytest.raises(ValueError, match="failures"):
        backoff(0)


def test_a_step_failing_every_round_backs_off_and_is_reported_once() -> None:
    failing = Outcome(ADD, error="etcdserver: unhealthy cluster")
    pace, posted, delays = _rounds([failing] * 5)
    assert delays == [5, 10, 20, 40, 80]
    assert posted[0] == [
        EventNote(EventType.NORMAL, "ScaleOut", "add demo-3 as a learner"),
        EventNote(EventType.WARNING, "StepFailed", "ScaleOut: etcdserver: unhealthy cluster"),
    ]
    assert posted[1:] == [[]] * 4
    assert pace.failures == 5


def test_progress_resets_the_backoff() -> None:
    _, _, delays = _rounds([Outcome(ADD, error="boom")] * 3 + [Outcome(ADD), Outcome(DEGRADED)])
    assert delays == [5, 10, 20, pacing.AFTER_ACTION, 5]


def test_a_degraded_cluster_backs_off_and_warns_only_when_newly_degraded() -> None:
    first = Outcome(DEGRADED, newly_degraded=True)
    again = Outcome(DEGRADED, newly_degraded=False)
    _, posted, delays = _rounds([first, again, again])
    assert delays == [5, 10, 20]
    assert posted == [[EventNote(EventType.WARNING, "QuorumLost", DEGRADED.message)], [], []]


def test_a_different_error_is_reported_but_the_same_one_is_not() -> None:
    _, posted, _ = _rounds(
        [Outcome(ADD, error="a"), Outcome(ADD, error="b"), Outcome(ADD, error="a")]
    )
    assert [n.message for n in posted[1]] == ["ScaleOut: b"]
    assert posted[2] == []


def test_an_object_apply_failure_backs_off_and_is_reported_once() -> None:
    failing = Outcome(IN_SYNC, objects_error="Service demo: forbidden")
    _, posted, delays = _rounds([failing, failing])
    assert delays == [5, 10]
    assert posted == [
        [EventNote(EventType.WARNING, "ObjectApplyFailed", "Service demo: forbidden")],
        [],
    ]


def test_being_in_sync_ends_the_episode_so_the_same_action_is_reported_again() -> None:
    _, posted, _ = _rounds(
        [Outcome(ADD), Outcome(WAIT), Outcome(ADD), Outcome(IN_SYNC), Outcome(ADD)]
    )
    assert [len(p) for p in posted] == [1, 0, 0, 0, 1]


def test_a_step_not_ready_retries_soon_without_counting_as_a_failure() -> None:
    pace, _, delays = _rounds([Outcome(ADD, not_ready=True)] * 3)
    assert delays == [pacing.AFTER_WAIT] * 3
    assert pace.failures == 0


def test_steady_states_keep_their_intervals() -> None:
    _, posted, delays = _rounds([Outcome(IN_SYNC), Outcome(WAIT), Outcome(PAUSED), Outcome(PAUSED)])
    assert delays == [pacing.IN_SYNC, pacing.AFTER_WAIT, pacing.PAUSED, pacing.PAUSED]
    assert posted == [[], [], [EventNote(EventType.NORMAL, "Paused", PAUSED.message)], []]


def test_memory_of_posted_events_is_bounded() -> None:
    outcomes = [Outcome(ADD, error=f"error {i}") for i in range(200)]
    pace, _, _ = _rounds(outcomes)
    assert len(pace.posted) <= 64


def test_replacing_a_member_etcd_raised_corrupt_for_is_a_warning() -> None:
    remove = Decision(RemoveMember(0x102, "demo-2"), Reason.REPLACE_ALARMED_MEMBER, "corrupt")
    _, posted, _ = _rounds([Outcome(remove)])
    assert posted == [[EventNote(EventType.WARNING, "ReplaceAlarmedMember", "corrupt")]]
