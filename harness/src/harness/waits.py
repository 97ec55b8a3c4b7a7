"""Waiting for state that something else produces later: Events (kopf posts them from its own
queue, after the status write that a test may already have seen), a value to settle, a
cluster's in-sync round. Each wait returns as soon as the state holds and, on timeout, fails
with the last value it saw, so that a wrong value is told apart from a slow one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Event

from etcd_operator.etcd import EtcdError
from harness.clusters import condition, get_cluster

T = TypeVar("T")


async def settled(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    within: float,
    what: str,
    *,
    interval: float = 0.5,
    describe: Callable[[T], object] = lambda value: value,
) -> T:
    """Poll `probe` until `accept(value)`; fail after `within` seconds with the last value seen
    (as `describe` shows it)."""
    deadline = time.monotonic() + within
    last: Any = "nothing yet"
    while True:
        try:
            value = await probe()
        except (ApiError, EtcdError, OSError) as e:
            last = e
        else:
            if accept(value):
                return value
            last = describe(value)
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {within:.0f}s waiting for {what}; last: {last!r}"
            )
        await asyncio.sleep(interval)


async def events(kube: AsyncClient, namespace: str, involved: str | None = None) -> list[Event]:
    """The namespace's Events, those about the object named `involved` only if given."""
    return [
        e
        async for e in kube.list(Event, namespace=namespace)
        if involved is None or e.involvedObject.name == involved
    ]


async def wait_events(
    kube: AsyncClient,
    namespace: str,
    match: Callable[[Event], bool],
    what: str,
    *,
    count: int = 1,
    involved: str | None = None,
    within: float = 60.0,
) -> list[Event]:
    """The matching Events once there are at least `count` of them; after `within` seconds,
    fails with the (type, reason, message) of every Event seen."""

    async def probe() -> list[Event]:
        return await events(kube, namespace, involved)

    found = await settled(
        probe,
        lambda seen: sum(1 for e in seen if match(e)) >= count,
        within,
        what,
        interval=0.3,
        describe=summary,
    )
    return [e for e in found if match(e)]


def summary(seen: list[Event]) -> list[tuple[str, str, str]]:
    """What a failure message shows of Events: type, reason, message."""
    return [(e.type or "", e.reason or "", e.message or "") for e in seen]


async def in_sync(kube: AsyncClient, namespace: str, name: str) -> bool:
    """Whether a round found the cluster in sync with its spec and recorded its last operation
    as done: the round that reported Ready may be followed by the one that records it, a
    write a test of idleness must not count."""
    body = await get_cluster(kube, namespace, name)
    progressing = condition(body, "Progressing") or {}
    last = (body.get("status") or {}).get("lastOperation") or {}
    return (
        progressing.get("reason") == "InSync"
        and progressing.get("observedGeneration") == body["metadata"]["generation"]
        and last.get("state") != "Processing"
    )
