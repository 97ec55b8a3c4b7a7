"""The daemons' loop of rounds: a failed round is retried after the error delay, a round that
returns None ends the loop, the pause between rounds is each round's own delay, and a replica
without the Lease runs no round."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from etcd_operator.handlers import rounds


class _Stopped:
    """The daemon's stop flag: set once `until()` holds."""

    def __init__(self, until: Callable[[], bool] = lambda: False) -> None:
        self.waits: list[float] = []
        self.until = until

    def __bool__(self) -> bool:
        return self.until()

    async def wait(self, delay: float) -> None:
        self.waits.append(delay)


class _Leader:
    def __init__(self, leader: bool = True) -> None:
        self.leader = leader

    def is_leader(self) -> bool:
        return self.leader


async def test_a_failed_round_is_logged_and_retried_until_one_ends_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[float | Exception | None] = [2.0, RuntimeError("boom"), 3.0, None]

    async def one_round() -> float | None:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    stopped = _Stopped()
    await rounds.follow(stopped, _Leader(), one_round, what="round of ns/x", error_delay=7.0)  # type: ignore[arg-type]
    assert stopped.waits == [2.0, 7.0, 3.0]
    assert outcomes == []
    assert "round of ns/x failed" in caplog.text


async def test_a_follower_runs_no_round_and_pauses_its_own_way() -> None:
    paused: list[float] = []

    async def pause(delay: float) -> None:
        paused.append(delay)

    async def one_round() -> float | None:
        raise AssertionError("a follower ran a round")

    stopped = _Stopped(until=lambda: len(paused) >= 2)
    await rounds.follow(
        stopped,  # type: ignore[arg-type]
        _Leader(leader=False),
        one_round,
        what="round",
        error_delay=1.0,
        pause=pause,
    )
    assert paused == [rounds.NOT_LEADER_DELAY, rounds.NOT_LEADER_DELAY]
    assert stopped.waits == []
