"""What an EtcdRestore's status says after a round (pure)."""

from __future__ import annotations

from datetime import datetime

from etcd_operator.api.common import Condition, ConditionStatus, next_condition
from etcd_operator.api.restore import (
    DrillResult,
    DrillStatus,
    EtcdRestoreStatus,
    RestoreConditionType,
    RestorePhase,
)
from etcd_operator.restore.decide import (
    Fail,
    RecordDrill,
    RecordVerified,
    RestoreDecision,
    RestoreObserved,
    Succeed,
)
from etcd_operator.restore.model import SnapshotFacts


def _set(  # noqa: PLR0917
    conditions: list[Condition],
    kind: RestoreConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    condition = next_condition(conditions, kind.value, status, reason, message, generation, now)
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
    if o.drill is not None:
        drill, conditions = _drill(current.drill, o, d, conditions, now, generation)
        update["drill"] = drill
    ours = o.cluster is not None and o.cluster.restored_by == o.uid
    if created or ours:
        update["cluster_name"] = o.cluster_name
    update["conditions"] = conditions
    return current.model_copy(update=update)


def _drill(  # noqa: PLR0917
    current: DrillStatus | None,
    o: RestoreObserved,
    d: RestoreDecision,
    conditions: list[Condition],
    now: datetime,
    generation: int | None,
) -> tuple[DrillStatus, list[Condition]]:
    """status.drill after this round: started, its expectations (with the snapshot's facts),
    its result (a check, or any failure before one) with the DrillPassed condition."""
    drill = current or DrillStatus(start_time=now)
    assert o.drill is not None
    if drill.source_cluster is None and o.drill.source_cluster is not None:
        # Known before anything is checked: a drill that fails at once is reported under it.
        drill = drill.model_copy(update={"source_cluster": o.drill.source_cluster})
    result: DrillResult | None = None
    match d.step:
        case RecordVerified(facts=facts):
            drill = drill.model_copy(update=_expectations(o, facts))
        case RecordDrill(result=r, served_revision=revision, served_keys=keys):
            result = r
            drill = drill.model_copy(update={"served_revision": revision, "served_keys": keys})
        case Fail() if drill.result is None:
            result = DrillResult.FAILED
        case _:
            pass
    if result is None:
        return drill, conditions
    drill = drill.model_copy(
        update={
            "result": result,
            "reason": d.reason,
            "message": d.message[:32768],
            "completion_time": now,
        }
    )
    passed = ConditionStatus.TRUE if result is DrillResult.PASSED else ConditionStatus.FALSE
    kind = RestoreConditionType.DRILL_PASSED
    return drill, _set(conditions, kind, passed, d.reason, d.message, now, generation)


def _expectations(o: RestoreObserved, facts: SnapshotFacts) -> dict[str, object]:
    assert o.drill is not None
    promised = o.drill.promised
    if promised is None:  # a location: the snapshot's own revision, no key count
        return {"expected_revision": facts.revision}
    return {
        "expected_revision": promised.revision,
        "expected_keys": promised.keys,
        "source_cluster": promised.source_cluster,
    }
