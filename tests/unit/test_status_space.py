"""`status.maintenance`: the records the space rules resume from, written at their step."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from etcd_operator.api import parse_spec
from etcd_operator.planner import (
    Compact,
    Decision,
    Defragment,
    DefragTrigger,
    DisarmAlarm,
    InSync,
    Observed,
    Reason,
    decide,
)
from etcd_operator.status import next_status, round_of
from etcd_operator.status_space import maintenance_status
from unit.support.observed import cluster, mid, name, set_health

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MIB = 1024**2


def alarmed() -> Observed:
    o = set_health(cluster(3), 1, db_size=16 * MIB, db_size_in_use=15 * MIB)
    return dataclasses.replace(o, space=dataclasses.replace(o.space, alarms=((mid(1), "NOSPACE"),)))


def test_compaction_is_recorded_with_the_size_before_and_alarms_named_by_member() -> None:
    o = alarmed()
    status = maintenance_status(o, decide(o), None, None, T0)
    assert status.no_space is not None and status.no_space.compacted_at == T0
    assert status.no_space.db_size_before == 16 * MIB
    assert status.alarms == ["etcd-1:NOSPACE"]
    assert status.quota_backend_bytes == 2 * 1024**3


def test_a_failed_compaction_is_not_recorded() -> None:
    o = alarmed()
    assert maintenance_status(o, decide(o), "etcd said no", None, T0).no_space is None


def test_the_record_goes_with_the_alarm() -> None:
    o = alarmed()
    before = maintenance_status(o, Decision(Compact(), Reason.COMPACT, "x"), None, None, T0)
    disarmed = Decision(DisarmAlarm((mid(1),)), Reason.SPACE_RECOVERED, "x")
    assert maintenance_status(o, disarmed, None, before, T0).no_space is None
    assert maintenance_status(cluster(3), decide(cluster(3)), None, before, T0).no_space is None


def test_defragmented_members_join_the_run_or_start_a_new_one() -> None:
    o = set_health(cluster(3), 2, db_size=100 * MIB, db_size_in_use=10 * MIB)
    first = Decision(
        Defragment(mid(2), name(2), DefragTrigger.THRESHOLD, True), Reason.DEFRAGMENT, ""
    )
    s1 = maintenance_status(o, first, None, None, T0)
    assert s1.last_defrag is not None and s1.last_defrag.trigger == "Threshold"
    assert [(m.name, m.db_size_before) for m in s1.last_defrag.members] == [(name(2), 100 * MIB)]
    later = T0 + timedelta(seconds=5)
    second = Decision(Defragment(mid(1), name(1), DefragTrigger.THRESHOLD), Reason.DEFRAGMENT, "")
    s2 = maintenance_status(o, second, None, s1, later)
    assert s2.last_defrag is not None and s2.last_defrag.start_time == T0
    assert [m.name for m in s2.last_defrag.members] == [name(2), name(1)]
    s3 = maintenance_status(o, Decision(InSync(), Reason.IN_SYNC, ""), None, s2, later)
    assert s3.last_defrag == s2.last_defrag


def test_an_unanswered_round_keeps_what_status_said() -> None:
    o = alarmed()
    s1 = maintenance_status(o, Decision(Compact(), Reason.COMPACT, ""), None, None, T0)
    blind = dataclasses.replace(o, members=None)
    s2 = maintenance_status(blind, decide(blind), None, s1, T0)
    assert s2.no_space == s1.no_space and s2.alarms == s1.alarms


@pytest.mark.parametrize(
    "defrag",
    [
        {},
        {"schedule": "every sunday"},
        {"schedule": "0 3 * * * *"},
        {"fragmentationThreshold": 1.5},
    ],
)
def test_invalid_defrag_specs_are_refused(defrag: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_spec({"maintenance": {"defrag": defrag}})


def test_a_defrag_spec_parses_with_its_minimum_size() -> None:
    spec = parse_spec({"maintenance": {"defrag": {"schedule": "0 3 * * 0"}}})
    assert spec.maintenance.defrag is not None
    assert spec.maintenance.defrag.min_db_bytes == 64 * MIB


def test_degraded_says_nospace_while_the_alarm_is_recovered_from() -> None:
    o = alarmed()
    r = round_of(o, decide(o), cluster_id=1, error=None)
    degraded = next(c for c in next_status(r, None, T0).conditions or [] if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == ("True", "NoSpace")
    assert "compacting" in degraded.message


def test_compaction_records_the_revision_it_belongs_to() -> None:
    o = alarmed()
    for i in range(3):
        o = set_health(o, i, revision=400 + i)
    status = maintenance_status(o, Decision(Compact(), Reason.COMPACT, ""), None, None, T0)
    assert status.no_space is not None and status.no_space.revision == 402


def test_disarming_corrupt_keeps_the_nospace_record() -> None:
    o = alarmed()
    before = maintenance_status(o, Decision(Compact(), Reason.COMPACT, "x"), None, None, T0)
    corrupt = Decision(DisarmAlarm((mid(2),), "CORRUPT"), Reason.CORRUPT_DISARMED, "x")
    assert maintenance_status(o, corrupt, None, before, T0).no_space == before.no_space
