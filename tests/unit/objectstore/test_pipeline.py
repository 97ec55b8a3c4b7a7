"""The writers' bounded pipeline: back-pressure, failures surfacing early, a clean close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from etcd_operator.objectstore.pipeline import Pipeline


class Gate:
    """Jobs that block in their worker until released, recording what ran."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.ran: list[int] = []

    def job(self, n: int) -> int:
        self.release.wait(timeout=10)
        self.ran.append(n)
        return n


async def test_submit_waits_while_depth_jobs_are_pending() -> None:
    gate = Gate()
    jobs = Pipeline("t", workers=1, depth=2)
    await jobs.submit(gate.job, 1)
    await jobs.submit(gate.job, 2)  # queued behind the first: depth reached
    third = asyncio.ensure_future(jobs.submit(gate.job, 3))
    await asyncio.sleep(0.05)
    assert not third.done()  # the stream waits instead of queueing more
    gate.release.set()
    await third
    await jobs.drain()
    assert gate.ran == [1, 2, 3]  # one worker: in submission order
    await jobs.close()


async def test_a_failed_job_fails_the_next_submit_and_drain() -> None:
    def fail() -> None:
        raise OSError(28, "No space left on device")

    jobs = Pipeline("t", workers=1, depth=2)
    failed = await jobs.submit(fail)
    await asyncio.wait([failed])
    with pytest.raises(OSError, match="No space"):
        await jobs.submit(lambda: None)
    failed_again = await jobs.submit(fail)
    await asyncio.wait([failed_again])
    with pytest.raises(OSError, match="No space"):
        await jobs.drain()
    await jobs.close()


async def test_close_drops_queued_jobs_and_waits_for_the_running_one() -> None:
    gate = Gate()
    jobs = Pipeline("t", workers=1, depth=3)
    await jobs.submit(gate.job, 1)
    await jobs.submit(gate.job, 2)
    await jobs.submit(gate.job, 3)
    await asyncio.sleep(0.05)  # job 1 is running, 2 and 3 are queued
    closing = asyncio.ensure_future(jobs.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # a running write must end before the file goes
    gate.release.set()
    await closing
    assert gate.ran == [1]
    with pytest.raises(RuntimeError):
        await jobs.submit(gate.job, 4)


def test_a_pipeline_needs_room_for_each_worker() -> None:
    with pytest.raises(ValueError):
        Pipeline("t", workers=2, depth=1)
