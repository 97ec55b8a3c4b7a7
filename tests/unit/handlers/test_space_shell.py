"""The shell's side of space: what is read into `SpaceState` and when the loop wakes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from etcd_operator.api import parse_cluster
from etcd_operator.etcd import EndpointHealth
from etcd_operator.etcd.types import Alarm, AlarmType, MemberStatus
from etcd_operator.handlers.space import next_defrag, observe_space
from unit.support.clusters import make_cluster

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class AlarmList:
    """Stands in for EtcdClient: counts the alarm list reads."""

    def __init__(self, *alarms: Alarm) -> None:
        self.listed = 0
        self._alarms = alarms

    async def alarms(self) -> tuple[Alarm, ...]:
        self.listed += 1
        return self._alarms


def _health(member_id: int, *errors: str) -> EndpointHealth:
    status = MemberStatus(
        endpoint="http://m:2379",
        member_id=member_id,
        cluster_id=1,
        version="3.6.16",
        db_size=1,
        db_size_in_use=1,
        leader=member_id,
        raft_index=1,
        raft_term=1,
        raft_applied_index=1,
        errors=tuple(errors),
        is_learner=False,
        revision=1,
    )
    return EndpointHealth("http://m:2379", True, 0.0, None, status)


async def test_a_calm_cluster_costs_no_alarm_list_read() -> None:
    etcd = AlarmList()
    space = await observe_space(etcd, make_cluster(), {1: _health(1)})  # type: ignore[arg-type]
    assert etcd.listed == 0 and space.alarms == ()


async def test_etcds_alarm_list_is_read_once_a_member_reports_an_error() -> None:
    etcd = AlarmList(Alarm(2, AlarmType.NOSPACE))
    health = {1: _health(1), 2: _health(2, "memberID:2 alarm:NOSPACE")}
    cluster = make_cluster(etcd={"quotaBackendBytes": 16 * 1024**2})
    space = await observe_space(etcd, cluster, health)  # type: ignore[arg-type]
    assert space.alarms == ((2, "NOSPACE"),)
    assert space.quota == 16 * 1024**2


async def test_status_records_and_the_policy_are_read_back() -> None:
    body: dict[str, Any] = {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": "d", "namespace": "ns", "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {"maintenance": {"defrag": {"schedule": "0 3 * * *", "minDBSize": "1Mi"}}},
        "status": {
            "maintenance": {
                "noSpace": {"compactedAt": "2026-11-30T11:00:00Z", "dbSizeBefore": 5},
                "lastDefrag": {
                    "trigger": "NoSpace",
                    "startTime": "2026-11-30T11:01:00Z",
                    "members": [
                        {
                            "name": "d-1",
                            "time": "2026-11-30T11:01:00Z",
                            "dbSizeBefore": 5,
                            "dbSizeInUseBefore": 1,
                        },
                    ],
                },
            }
        },
    }
    space = await observe_space(None, parse_cluster(body), {})
    assert space.compacted_at == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert space.db_size_before == 5
    assert space.last_defrag is not None and space.last_defrag.members == ("d-1",)
    assert space.defrag is not None and space.defrag.min_db_size == 1024**2
    assert space.created == datetime(2026, 11, 1, tzinfo=UTC)


def test_the_loop_wakes_at_the_schedules_next_time() -> None:
    cluster = make_cluster(maintenance={"defrag": {"schedule": "30 3 * * *"}})
    assert next_defrag(cluster, T0) == datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
    assert next_defrag(make_cluster(), T0) is None
