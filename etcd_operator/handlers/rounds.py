"""The loop of a kopf daemon that follows one object in rounds (an EtcdBackup, an
EtcdBackupSchedule, an EtcdRestore): only the Lease holder runs rounds (HA replicas); a round
that fails is logged and retried later; the loop ends once a round says nothing more will
change. State lives in the world and in status, never in the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import kopf

log = logging.getLogger(__name__)
NOT_LEADER_DELAY = 5.0

# One round: the seconds until the next, or None when the object needs no more rounds.
Round = Callable[[], Awaitable[float | None]]
Pause = Callable[[float], Awaitable[object]]


class Leadership(Protocol):
    def is_leader(self) -> bool: ...


async def follow(
    stopped: kopf.DaemonStopped,
    leader: Leadership,
    one_round: Round,
    *,
    what: str,
    error_delay: float,
    pause: Pause | None = None,
) -> None:
    """Run `one_round` until it returns None or the daemon stops, pausing between rounds
    with `pause` (default: the daemon's own stoppable wait)."""
    wait = pause or stopped.wait
    while not stopped:
        if not leader.is_leader():
            await wait(NOT_LEADER_DELAY)
            continue
        try:
            delay = await one_round()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)
            delay = error_delay
        if delay is None:
            return
        await wait(delay)
