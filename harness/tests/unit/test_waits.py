"""harness.waits.settled: returns as soon as the value is accepted, keeps polling through
passing errors, and fails with the last value seen (not merely "timed out")."""

from __future__ import annotations

import time

import pytest

from etcd_operator.etcd import EtcdError
from harness.waits import settled


async def test_returns_the_first_accepted_value_without_waiting_further() -> None:
    values = iter([1, 2, 3, 4])

    async def probe() -> int:
        return next(values)

    started = time.monotonic()
    got = await settled(probe, lambda v: v >= 3, 5, "three", interval=0.01)
    assert got == 3
    assert time.monotonic() - started < 1


async def test_errors_on_the_way_are_retried() -> None:
    calls = 0

    async def probe() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise EtcdError("not yet")
        return "up"

    assert await settled(probe, lambda v: v == "up", 5, "up", interval=0.01) == "up"


async def test_a_wrong_value_fails_with_the_last_value_seen() -> None:
    async def probe() -> dict[str, float]:
        return {"result": 1.0}

    with pytest.raises(AssertionError, match=r"the result.*last: 'result=1\.0'"):
        await settled(
            probe,
            lambda v: v["result"] == 0.0,
            0.2,
            "the result",
            interval=0.05,
            describe=lambda v: f"result={v['result']}",
        )
