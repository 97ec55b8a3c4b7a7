"""When a cluster's next round is due and which Events a round posts: pure.

The reconcile loop keeps one `Pace` per cluster in memory (nothing here needs to survive a
restart: after one, at most one Event of each kind is posted again and the back-off starts
over). Two rules keep a broken cluster quiet:

* **Back-off**: a round that fails (its step or an object apply raised, or the planner can
  only report `Degraded`) waits `AFTER_ERROR` (5 s), doubling with every further failed round
  in a row up to `MAX_BACKOFF` (2 min); the first round that does not fail resets it. Events
  of the cluster's pods, claims or the resource itself still wake the loop at once, so
  the back-off only stretches rounds that nothing asked for.
* **Event de-duplication**: an Event identical (type, reason, message) to one posted
  earlier in the same episode is not posted again. An episode ends when the cluster is in
  sync, so the same action taken again later (a pod deleted by hand twice) is reported
  each time, while a step that keeps failing, a Degraded cluster or a pause is reported once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from etcd_operator.planner import (
    Decision,
    Degraded,
    Done,
    InSync,
    Paused,
    Reason,
    Wait,
    acts,
)

# Seconds until the next round when nothing wakes the loop earlier.
AFTER_ACTION = 1.0
AFTER_WAIT = 2.0
AFTER_ERROR = 5.0
MAX_BACKOFF = 120.0
IN_SYNC = 15.0
PAUSED = 30.0
# Events remembered per episode; a long episode forgets its oldest first.
_REMEMBERED = 64


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


# Reasons of Events the shell posts beside the planner's own.
STEP_FAILED = "StepFailed"
OBJECT_APPLY_FAILED = "ObjectApplyFailed"


@dataclass(frozen=True, slots=True)
class EventNote:
    """One Event to post on the cluster."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Pace:
    """What the loop remembers between rounds of one cluster."""

    failures: int = 0  # failed rounds in a row
    posted: tuple[EventNote, ...] = ()  # Events posted in the current episode


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one round did, as pacing sees it."""

    decision: Decision
    error: str | None = None  # applying the step failed
    objects_error: str | None = None  # applying a Service or the PDB failed
    newly_degraded: bool = False  # status did not say Degraded with this reason before
    not_ready: bool = False  # the step could not take effect yet (etcd: try again soon)

    @property
    def failed(self) -> bool:
        return (
            self.error is not None
            or self.objects_error is not None
            or isinstance(self.decision.step, Degraded)
        )


def backoff(failures: int) -> float:
    """5 s, 10 s, 20 s, ... for the 1st, 2nd, 3rd failed round in a row; at most 2 min."""
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    return min(AFTER_ERROR * 2.0 ** min(failures - 1, 16), MAX_BACKOFF)


def delay_after(outcome: Outcome, failures: int) -> float:
    """Seconds until the next round; `failures` counts this round if it failed."""
    if outcome.failed:
        return backoff(failures)
    if outcome.not_ready:
        return AFTER_WAIT
    match outcome.decision.step:
        case InSync():
            return IN_SYNC
        case Paused() | Done():
            return PAUSED
        case Wait():
            return AFTER_WAIT
        case _:
            return AFTER_ACTION


# Actions that answer something a human should know went wrong (a member's data diverged).
_WARNING_ACTIONS = {Reason.REPLACE_CORRUPT_MEMBER, Reason.REPLACE_ALARMED_MEMBER}


def wanted_events(outcome: Outcome) -> list[EventNote]:
    """Every Event this round has something to say with, before de-duplication."""
    d = outcome.decision
    notes: list[EventNote] = []
    if acts(d.step):
        kind = EventType.WARNING if d.reason in _WARNING_ACTIONS else EventType.NORMAL
        notes.append(EventNote(kind, d.reason.value, d.message))
    elif isinstance(d.step, Degraded) and outcome.newly_degraded:
        notes.append(EventNote(EventType.WARNING, d.reason.value, d.message))
    elif isinstance(d.step, Paused):
        notes.append(EventNote(EventType.NORMAL, d.reason.value, d.message))
    if outcome.error is not None:
        notes.append(
            EventNote(EventType.WARNING, STEP_FAILED, f"{d.reason.value}: {outcome.error}")
        )
    if outcome.objects_error is not None:
        notes.append(EventNote(EventType.WARNING, OBJECT_APPLY_FAILED, outcome.objects_error))
    return notes


def after_round(pace: Pace, outcome: Outcome) -> tuple[Pace, list[EventNote], float]:
    """The loop's memory after this round, the Events to post now, and the delay."""
    failures = pace.failures + 1 if outcome.failed else 0
    wanted = wanted_events(outcome)
    post = [n for n in _unique(wanted) if n not in pace.posted]
    if isinstance(outcome.decision.step, InSync) and not outcome.failed:
        posted: tuple[EventNote, ...] = ()  # the episode is over
    else:
        posted = (*pace.posted, *post)[-_REMEMBERED:]
    return Pace(failures, posted), post, delay_after(outcome, failures)


def _unique(notes: Sequence[EventNote]) -> list[EventNote]:
    return list(dict.fromkeys(notes))
