"""`status.maintenance` after one round (pure): the quota, etcd's alarms, and the records the
space rules resume from, each written at the step that makes it true."""

from __future__ import annotations

from datetime import datetime

from etcd_operator.api.maintenance_status import (
    DefraggedMember,
    DefragRunStatus,
    MaintenanceStatus,
    NoSpaceStatus,
)
from etcd_operator.naming import url_address
from etcd_operator.planner import Compact, Decision, Defragment, DisarmAlarm, Observed, Reason
from etcd_operator.planner.space import current_revision

_NOSPACE = "NOSPACE"


def _names(o: Observed) -> dict[int, str]:
    by_address = {url_address(u): n for n, u in o.expected_peer_urls.items()}
    names: dict[int, str] = {}
    for m in o.members or ():
        found = (by_address.get(url_address(u)) for u in m.peer_urls)
        names[m.id] = next((n for n in found if n), m.name or f"{m.id:x}")
    return names


def refusing_writes(o: Observed) -> str | None:
    """The Degraded reason while etcd refuses writes: for a CORRUPT alarm (its member being
    replaced) or for lack of space (NOSPACE is active and being recovered from), else None."""
    if any(kind == "CORRUPT" for _, kind in o.space.alarms):
        return Reason.CORRUPT_ALARM.value
    if any(kind == _NOSPACE for _, kind in o.space.alarms):
        return Reason.NO_SPACE.value
    return None


def maintenance_status(
    o: Observed,
    decision: Decision,
    error: str | None,
    previous: MaintenanceStatus | None,
    now: datetime,
) -> MaintenanceStatus:
    space = o.space
    names = _names(o)
    no_space = previous.no_space if previous else None
    run = previous.last_defrag if previous else None
    known = o.members is not None  # etcd answered: its alarm list is this round's
    if known and not any(kind == _NOSPACE for _, kind in space.alarms):
        no_space = None  # the alarm is gone: the next one starts with a compaction again
    step = decision.step
    if error is None:
        match step:
            case Compact():
                sizes = [h.db_size for h in o.member_health.values() if h.reachable]
                no_space = NoSpaceStatus(
                    compacted_at=now,
                    db_size_before=max(sizes, default=0),
                    revision=current_revision(o),
                )
            case DisarmAlarm(alarm="NOSPACE"):
                no_space = None
            case Defragment(member_id=mid, member=name, trigger=trigger, new_run=new_run):
                h = o.member_health.get(mid)
                done = DefraggedMember(
                    name=name,
                    time=now,
                    db_size_before=h.db_size if h else 0,
                    db_size_in_use_before=h.db_size_in_use if h else 0,
                )
                if new_run or run is None:
                    run = DefragRunStatus(trigger=trigger.value, start_time=now, members=[done])
                else:
                    run = run.model_copy(update={"members": [*run.members, done]})
            case _:
                pass
    alarms = previous.alarms if previous and not known else None
    if known:
        alarms = [f"{names.get(mid, f'{mid:x}')}:{kind}" for mid, kind in space.alarms] or None
    return MaintenanceStatus(
        quota_backend_bytes=space.quota,
        alarms=alarms,
        no_space=no_space,
        last_defrag=run,
    )
