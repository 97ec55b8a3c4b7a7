"""A replica that does not hold the Lease takes no step for backups or restores."""

from __future__ import annotations

from typing import Any

from etcd_operator.handlers import etcdbackup, etcdrestore, rounds


class _Stopped:
    """Stops the daemon after its first wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __bool__(self) -> bool:
        return bool(self.waits)

    async def wait(self, delay: float) -> None:
        self.waits.append(delay)


class _Follower:
    def is_leader(self) -> bool:
        return False


class _Untouchable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a follower called the API: {name}")


class _Memo:
    leader = _Follower()
    kube = _Untouchable()
    cluster_domain = "cluster.local"


async def test_a_follower_leaves_backups_alone() -> None:
    stopped = _Stopped()
    await etcdbackup.follow_backup(stopped=stopped, name="b", namespace="ns", memo=_Memo())  # type: ignore[arg-type]
    assert stopped.waits == [rounds.NOT_LEADER_DELAY]


async def test_a_follower_leaves_restores_alone() -> None:
    stopped = _Stopped()
    await etcdrestore.restore_forever(
        stopped=stopped,  # type: ignore[arg-type]
        name="r",
        namespace="ns",
        memo=_Memo(),  # type: ignore[arg-type]
        body={},  # type: ignore[arg-type]
    )
    assert stopped.waits == [rounds.NOT_LEADER_DELAY]
