"""When the corruption check runs (cron after the last check, and every round while a diverged
member is on record), what status says of it, and that a replacement it causes is a Warning."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from etcd_operator.api import EtcdCluster, InvalidSpecError, MemberStatus, parse_cluster
from etcd_operator.handlers.corruption import check_due
from etcd_operator.pacing import EventType, Outcome, wanted_events
from etcd_operator.planner import KvHash, decide
from etcd_operator.status import Round, next_status
from unit.support.observed import cluster, mid, name

T0 = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def _cluster(schedule: str | None, check: dict[str, Any] | None = None) -> EtcdCluster:
    body: dict[str, Any] = {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"maintenance": {"corruptionCheck": {"schedule": schedule}}},
    }
    if check is not None:
        body["status"] = {"corruptionCheck": check}
    return parse_cluster(body)


def test_a_check_is_due_first_at_once_then_by_the_schedule() -> None:
    daily = "0 3 * * *"
    assert check_due(_cluster(daily), T0)
    done = {"lastTime": T0.isoformat(), "revision": 5, "diverged": []}
    assert not check_due(_cluster(daily, done), T0.replace(hour=23))
    assert check_due(_cluster(daily, done), T0.replace(day=2))


def test_a_diverged_member_on_record_is_checked_every_round_until_it_is_gone() -> None:
    found = {"lastTime": T0.isoformat(), "revision": 5, "diverged": ["demo-2"]}
    assert check_due(_cluster("0 3 * * *", found), T0)
    assert check_due(_cluster(None, found), T0)  # even with the schedule removed
    assert not check_due(_cluster(None), T0)


def test_a_schedule_that_is_not_cron_is_refused() -> None:
    with pytest.raises(InvalidSpecError):
        _cluster("99 3 * * *")


def _round(hashes: dict[int, KvHash]):  # type: ignore[no-untyped-def]
    o = dataclasses.replace(cluster(3), kv_hashes=hashes)
    rows = [MemberStatus.model_validate({"name": name(i), "id": f"{mid(i):x}"}) for i in range(3)]
    return Round(o, decide(o), rows, 3, "abc", name(0), "http://x:2379")


def test_status_names_the_diverged_member_and_clears_once_all_agree() -> None:
    bad = {mid(0): KvHash(9, 1, 1), mid(1): KvHash(9, 1, 1), mid(2): KvHash(9, 1, 2)}
    status = next_status(_round(bad), None, T0)
    assert status.corruption_check is not None
    assert status.corruption_check.diverged == [name(2)]
    assert name(2) in status.corruption_check.message
    good = {i: KvHash(10, 1, 1) for i in bad}
    later = next_status(_round(good), status, T0)
    assert later.corruption_check is not None and later.corruption_check.diverged == []
    # A round without a check keeps the record.
    assert next_status(_round({}), later, T0).corruption_check == later.corruption_check


def test_the_replacement_of_a_diverged_member_is_a_warning_event() -> None:
    bad = {mid(0): KvHash(9, 1, 1), mid(1): KvHash(9, 1, 1), mid(2): KvHash(9, 1, 2)}
    notes = wanted_events(Outcome(_round(bad).decision))
    assert [n.type for n in notes] == [EventType.WARNING]
    assert name(2) in notes[0].message
