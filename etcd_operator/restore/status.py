"""What an EtcdRestore's status says after a round (pure)."""

from __future__ import annotations

from datetime import datetime

from etcd_operator.api.common import Condition, ConditionStatus
from etcd_operator.api.restore import EtcdRestoreStatus, RestoreConditionType, RestorePhase
from etcd_operator.restore.decide import (
    Fail,
    RecordVerified,
    RestoreDecision,
    RestoreObserved,
    Succeed,
)


def _set(  # noqa: PLR0917
    conditions: list[Condition],
    kind: RestoreConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    old = next((c for c in conditions if c.type == kind.value), None)
    changed = old is None or old.status is not status
    condition = Condition(
        type=kind.value,
        status=status,
        observed_generation=generation,
        last_transition_time=now if changed or old is None else old.last_transition_time,
        reason=reason,
        message=message[:32768],
    )
    return [*(c for c in conditions if c.type != kind.value), condition]


def next_restore_status(
    current: EtcdRestoreStatus,
    o: RestoreObserved,
    d: RestoreDecision,
    *,
    now: datetime,
    generation: int | None,
    created: bool = False,
) -> EtcdRestoreStatus:
    """`created`: this round created the cluster (status names it from now on)."""
    if d.phase is current.phase and current.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED):
        return current
    conditions = list(current.conditions)
    update: dict[str, object] = {"phase": d.phase, "observed_generation": generation}
    match d.step:
        case RecordVerified(facts=facts):
            update |= {"revision": facts.revision, "sha256": facts.sha256, "size": facts.size}
            conditions = _set(
                conditions,
                RestoreConditionType.VERIFIED,
                ConditionStatus.TRUE,
                d.reason,
                d.message,
                now,
                generation,
            )
        case Fail(snapshot=snapshot):
            if snapshot:
                conditions = _set(
                    conditions,
                    RestoreConditionType.VERIFIED,
                    ConditionStatus.FALSE,
                    d.reason,
                    d.message,
                    now,
                    generation,
                )
            conditions = _set(
                conditions,
                RestoreConditionType.RESTORED,
                ConditionStatus.FALSE,
                d.reason,
                d.message,
                now,
                generation,
            )
            update["completion_time"] = now
        case Succeed():
            conditions = _set(
                conditions,
                RestoreConditionType.RESTORED,
                ConditionStatus.TRUE,
                d.reason,
                d.message,
                now,
                generation,
            )
            update["completion_time"] = now
        case _:
            pass
    ours = o.cluster is not None and o.cluster.restored_by == o.uid
    if created or ours:
        update["cluster_name"] = o.cluster_name
    update["conditions"] = conditions
    return current.model_copy(update=update)
