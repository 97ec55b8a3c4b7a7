"""kopf wiring for EtcdBackupSchedule: one daemon per schedule (thin shell).

Each round observes the schedule and the EtcdBackups and drill EtcdRestores it owns, asks
`backup.schedule.plan` what to do, creates and deletes what it says, writes status if it
changed and posts Events. Between rounds the daemon sleeps until the next scheduled time,
or until a watch event on the schedule or on something it owns wakes it: an idle schedule
costs no API call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from lightkube import AsyncClient
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import GROUP, VERSION, InvalidSpecError
from etcd_operator.api.backup import BackupPhase
from etcd_operator.api.backup_schedule import (
    PLURAL,
    EtcdBackupSchedule,
    EtcdBackupScheduleStatus,
    LastDrill,
    parse_schedule,
    parse_schedule_status,
)
from etcd_operator.backup.schedule import OwnedBackup, OwnedDrill, Plan, backup_name, plan
from etcd_operator.backup.schedule_status import (
    invalid_status,
    notes,
    schedule_status,
)
from etcd_operator.handlers.idempotent import create_once, delete_once, get_or_none
from etcd_operator.handlers.rounds import follow
from etcd_operator.kube import EtcdBackupResource, EtcdBackupScheduleResource, EtcdRestoreResource
from etcd_operator.resources.scheduled import (
    SCHEDULE_LABEL,
    SCHEDULED_AT_ANNOTATION,
    drill_restore,
    format_time,
    parse_time,
    scheduled_backup,
)

rbac.needs(EtcdBackupScheduleResource, "list", "watch", why="kopf: a daemon per schedule")
rbac.needs(EtcdBackupScheduleResource, "patch", why="kopf: its finalizer and annotations")
rbac.needs(EtcdBackupScheduleResource, "get", why="each schedule round reads it afresh")
rbac.needs(EtcdBackupScheduleResource.Status, "patch", why="schedule status: times, conditions")
rbac.needs(
    EtcdBackupScheduleResource,
    "update",
    subresource="finalizers",
    why="blockOwnerDeletion on the backups and drills it owns",
)
rbac.needs(EtcdBackupResource, "create", why="schedule: the backup of each run")
rbac.needs(EtcdBackupResource, "delete", why="schedule: retention prunes old backups")
rbac.needs(EtcdBackupResource, "list", why="schedule: the backups it owns")
rbac.needs(EtcdRestoreResource, "create", why="schedule: a restore drill of the newest backup")
rbac.needs(EtcdRestoreResource, "delete", why="schedule: only the last drills are kept")
rbac.needs(EtcdRestoreResource, "list", why="schedule: the drills it owns and their results")

MIN_DELAY = 1.0  # rounds woken by a burst of watch events are at least this far apart
MAX_DELAY = 600.0  # a safety net under the watch: look again at least this often
ERROR_DELAY = 10.0
_WAKEUPS = "schedule_wakeups"


@kopf.on.startup()
async def schedule_memo(memo: kopf.Memo, **_: Any) -> None:
    # Shared by every object's (shallow-copied) memo: the watch handlers wake the daemons.
    memo[_WAKEUPS] = {}


def _wakeup(memo: kopf.Memo, namespace: str, name: str) -> asyncio.Event:
    wakeups: dict[tuple[str, str], asyncio.Event] = memo[_WAKEUPS]
    return wakeups.setdefault((namespace, name), asyncio.Event())


def _wake(memo: kopf.Memo, namespace: str | None, labels: Mapping[str, str]) -> None:
    schedule = labels.get(SCHEDULE_LABEL)
    wakeups: dict[tuple[str, str], asyncio.Event] | None = memo.get(_WAKEUPS)
    if schedule and namespace and wakeups is not None and (namespace, schedule) in wakeups:
        wakeups[(namespace, schedule)].set()


@kopf.on.event(GROUP, VERSION, "etcdbackups", labels={SCHEDULE_LABEL: kopf.PRESENT})
async def scheduled_backup_changed(
    namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    _wake(memo, namespace, labels)


@kopf.on.event(GROUP, VERSION, "etcdrestores", labels={SCHEDULE_LABEL: kopf.PRESENT})
async def drill_changed(
    namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    _wake(memo, namespace, labels)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def schedule_changed(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    _wake(memo, namespace, {SCHEDULE_LABEL: name})


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def follow_schedule(
    stopped: kopf.DaemonStopped, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    ns = namespace or "default"
    wake = _wakeup(memo, ns, name)
    state = RoundState()

    async def pause(delay: float) -> None:
        await _sleep(stopped, wake, max(MIN_DELAY, min(delay, MAX_DELAY)))
        # What happens from now on wakes the next pause; the round about to run sees the rest.
        wake.clear()

    try:
        await follow(
            stopped,
            memo.leader,
            lambda: schedule_round(memo.kube, ns, name, state),  # None once the schedule is gone
            what=f"schedule round of {ns}/{name}",
            error_delay=ERROR_DELAY,
            pause=pause,
        )
    finally:
        memo[_WAKEUPS].pop((ns, name), None)


async def _sleep(stopped: kopf.DaemonStopped, wake: asyncio.Event, seconds: float) -> None:
    """Until `seconds` passed, the daemon is stopped or a watch event woke it."""
    woken = asyncio.ensure_future(wake.wait())
    ending = asyncio.ensure_future(stopped.wait(seconds))
    try:
        await asyncio.wait({woken, ending}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (woken, ending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class RoundState:
    """What a daemon remembers between rounds: only what it already told the user."""

    def __init__(self) -> None:
        self.missed_reported: datetime | None = None


def _owned(body: Mapping[str, Any], uid: str) -> bool:
    owners = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("uid") == uid for o in owners)


def _scheduled(body: Mapping[str, Any]) -> datetime:
    metadata = body.get("metadata") or {}
    time = parse_time((metadata.get("annotations") or {}).get(SCHEDULED_AT_ANNOTATION))
    return time or parse_time(metadata.get("creationTimestamp")) or datetime.fromtimestamp(0, UTC)


def owned_backup(body: Mapping[str, Any]) -> OwnedBackup:
    """What the plan needs of one EtcdBackup body (tolerant: the status is the operator's)."""
    status = body.get("status") or {}
    phase = status.get("phase")
    failed = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Failed"), None
    )  # fmt: skip
    return OwnedBackup(
        name=body["metadata"]["name"],
        scheduled=_scheduled(body),
        phase=BackupPhase(phase) if phase in set(BackupPhase) else None,
        completion_time=parse_time(status.get("completionTime")),
        failed_reason=failed.get("reason") if failed and phase == BackupPhase.FAILED else None,
        deleting=bool(body["metadata"].get("deletionTimestamp")),
    )


def owned_drill(body: Mapping[str, Any]) -> OwnedDrill:
    status = body.get("status") or {}
    drill = status.get("drill") or {}
    return OwnedDrill(
        name=body["metadata"]["name"],
        scheduled=_scheduled(body),
        final=status.get("phase") in ("Succeeded", "Failed"),
        result=drill.get("result"),
        result_time=parse_time(drill.get("completionTime") or status.get("completionTime")),
        backup=((body.get("spec") or {}).get("source") or {}).get("backup", {}).get("name"),
        deleting=bool(body["metadata"].get("deletionTimestamp")),
    )


def newest_drill_result(drills: list[OwnedDrill]) -> LastDrill | None:
    with_result = [d for d in drills if d.result]
    if not with_result:
        return None
    newest = max(with_result, key=lambda d: (d.scheduled, d.name))
    return LastDrill(
        name=newest.name, backup=newest.backup, result=newest.result, time=newest.result_time
    )


async def _list_owned(
    kube: AsyncClient, kind: Any, schedule: EtcdBackupSchedule
) -> list[dict[str, Any]]:
    found = []
    async for item in kube.list(
        kind, namespace=schedule.namespace, labels={SCHEDULE_LABEL: schedule.name}
    ):
        body: dict[str, Any] = item.to_dict()
        if _owned(body, schedule.metadata.uid):
            found.append(body)
    return found


async def _apply(
    kube: AsyncClient, schedule: EtcdBackupSchedule, steps: Plan, target: kopf.Body
) -> None:
    ns = schedule.namespace
    if steps.create is not None:
        body = scheduled_backup(schedule, steps.create)
        if await create_once(kube, EtcdBackupResource(**body)):
            kopf.info(target, reason="BackupCreated", message=f"EtcdBackup "
                      f"{body['metadata']['name']} for {format_time(steps.create)}")  # fmt: skip
    for name in steps.prune:
        await delete_once(kube, EtcdBackupResource, name, ns)
        kopf.info(target, reason="BackupPruned", message=f"EtcdBackup {name} (retention)")
    if steps.drill is not None and steps.summary.newest_success is not None:
        body = drill_restore(schedule, steps.drill, steps.summary.newest_success)
        if await create_once(kube, EtcdRestoreResource(**body)):
            kopf.info(target, reason="DrillCreated", message=f"EtcdRestore "
                      f"{body['metadata']['name']} of {steps.summary.newest_success}")  # fmt: skip
    for name in steps.drill_prune:
        await delete_once(kube, EtcdRestoreResource, name, ns)


async def _patch_status(
    kube: AsyncClient, namespace: str, name: str, old: EtcdBackupScheduleStatus,
    new: EtcdBackupScheduleStatus,
) -> None:  # fmt: skip
    payload = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    before = old.model_dump(mode="json", by_alias=True, exclude_none=True)
    if payload == before:
        return
    # A merge patch sets what changed and clears what was dropped (e.g. `active`).
    patch: dict[str, Any] = dict(payload)
    for key in before.keys() - payload.keys():
        patch[key] = None
    await kube.patch(
        EtcdBackupScheduleResource.Status,
        name,
        {"status": patch},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


async def schedule_round(
    kube: AsyncClient, namespace: str, name: str, state: RoundState
) -> float | None:
    """One round; the seconds until the next, None once the schedule is gone."""
    raw = await get_or_none(kube, EtcdBackupScheduleResource, name, namespace)
    if raw is None:
        return None
    body: dict[str, Any] = raw.to_dict()
    target = kopf.Body(cast(kopf.RawBody, body))
    previous = parse_schedule_status(body)
    now = datetime.now(UTC)
    generation = (body.get("metadata") or {}).get("generation")
    try:
        schedule = parse_schedule(body)
    except InvalidSpecError as e:
        new = invalid_status(previous, str(e), generation, now)
        if previous.observed_generation != generation or previous.next_schedule_time:
            kopf.warn(target, reason="InvalidSpec", message=str(e))
        await _patch_status(kube, namespace, name, previous, new)
        return MAX_DELAY  # a spec change wakes the daemon
    backups = [owned_backup(b) for b in await _list_owned(kube, EtcdBackupResource, schedule)]
    drills = [owned_drill(d) for d in await _list_owned(kube, EtcdRestoreResource, schedule)]
    steps = plan(
        now,
        schedule.spec,
        created=schedule.metadata.creation_timestamp or now,
        backups=backups,
        drills=drills,
        last_schedule_time=previous.last_schedule_time,
        last_drill_schedule_time=previous.last_drill_schedule_time,
        last_successful=(previous.last_successful_time, previous.last_successful_backup),
        last_failed=(
            previous.last_failed_time,
            previous.last_failed_backup,
            previous.last_failed_reason,
        ),
    )
    await _apply(kube, schedule, steps, target)
    if steps.missed is not None and steps.missed != state.missed_reported:
        state.missed_reported = steps.missed
        kopf.warn(target, reason="MissedSchedule", message=f"the run of "
                  f"{format_time(steps.missed)} is past startingDeadlineSeconds")  # fmt: skip
    new = schedule_status(
        previous,
        steps,
        suspend=schedule.spec.suspend,
        generation=generation,
        now=now,
        last_drill=newest_drill_result(drills),
    )
    if steps.create is not None:
        # The backup just created runs now (the next list would show it).
        new = new.model_copy(update={"active": backup_name(schedule.name, steps.create)})
    for note in notes(previous, new):
        kopf.event(target, type="Warning" if note.warning else "Normal", reason=note.reason,
                   message=note.message)  # fmt: skip
    await _patch_status(kube, namespace, name, previous, new)
    wake = steps.wake
    if wake is None:
        return MAX_DELAY
    return (wake - datetime.now(UTC)).total_seconds()
