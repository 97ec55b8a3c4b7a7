"""Apply the downgrade steps: etcd's downgrade API, through the round's etcd client."""

from __future__ import annotations

import contextlib

from etcd_operator.etcd import DowngradeInProgress, DowngradeRefused, EtcdClient, EtcdUnavailable
from etcd_operator.handlers.observe import World
from etcd_operator.planner import Decision, Reason
from etcd_operator.planner.steps import degraded


async def enable_downgrade(etcd: EtcdClient, version: str) -> None:
    """Validate, then enable. A refusal (DowngradeRefused) carries etcd's reason to the
    round's Degraded condition and Warning Event, and nothing has changed."""
    await etcd.downgrade_validate(version)
    # Enabled by an earlier round whose answer was lost: done.
    with contextlib.suppress(DowngradeInProgress):
        await etcd.downgrade_enable(version)


async def cancel_downgrade(world: World, etcd: EtcdClient, member_id: int) -> None:
    """Cancel through the member that reported the downgrade (it knows the API)."""
    health = world.health.get(member_id)
    if health is None:
        raise EtcdUnavailable(f"member {member_id:x} was not reached this round")
    await etcd.downgrade_cancel(health.endpoint)


def refused(decision: Decision, error: DowngradeRefused) -> Decision:
    """What the round reports when etcd's validate refused the downgrade: Degraded with etcd's
    own reason (and a Warning Event when it is new). Validate changes nothing, so nothing has
    changed; the next rounds ask etcd again, as the cluster may have moved meanwhile."""
    return degraded(
        Reason.DOWNGRADE_REFUSED,
        f"{decision.message}: etcd refuses ({error.details}); nothing was changed. Set"
        " spec.version back to the version the members run",
    )
