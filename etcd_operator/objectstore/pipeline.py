"""Bounded background work for a writer: the stream goes on while worker threads write.

A writer hands each full buffer to a job in a worker thread and keeps reading; at most
`depth` jobs are queued or running, so memory stays a few buffers whatever the snapshot's
size, and the stream waits (back-pressure) only when the destination is the slower side.
A failed job fails the next `submit` or `drain`, not only the end of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Pipeline:
    def __init__(self, name: str, *, workers: int, depth: int) -> None:
        if workers < 1 or depth < workers:
            raise ValueError("a pipeline needs a worker and room for each worker's job")
        self.depth = depth
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending: set[asyncio.Future[Any]] = set()
        self._closed = False

    async def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` in a worker once fewer than `depth` jobs are pending (waiting
        for room if need be); raises the error of any earlier job that failed."""
        if self._closed:
            raise RuntimeError("pipeline closed")
        self._reap()
        while len(self._pending) >= self.depth:
            await asyncio.wait(self._pending, return_when=asyncio.FIRST_COMPLETED)
            self._reap()
        job = asyncio.wrap_future(self._pool.submit(fn, *args))
        self._pending.add(job)
        return job

    def _reap(self) -> None:
        done = [job for job in self._pending if job.done()]
        self._pending.difference_update(done)
        errors = [e for job in done if not job.cancelled() and (e := job.exception())]
        if errors:
            raise errors[0]

    async def drain(self) -> None:
        """Wait for every job; raises the first error among them."""
        while self._pending:
            await asyncio.wait(self._pending, return_when=asyncio.FIRST_COMPLETED)
            self._reap()

    async def close(self) -> None:
        """Drop queued jobs and wait for running ones to end (a thread cannot be stopped,
        and what it writes must be over before the writer removes it); never raises."""
        self._closed = True
        for job in self._pending:
            job.cancel()  # a queued job never starts; a running one ends on its own
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._pending.clear()
