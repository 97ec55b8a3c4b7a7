"""In-place rollback states for the planner's generator and tests (branch rollback)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from etcd_operator.planner.model import (
    BackupFacts,
    RollbackPhase,
    RollbackRecord,
    RollbackRequest,
    RollbackState,
    SnapshotCheck,
)

BACKUP = "nightly"
BACKUP_UID = "backup-uid"
REVISION = 40


def backup(**changes: Any) -> BackupFacts:
    facts = BackupFacts(BACKUP, BACKUP_UID, "Succeeded", "etcd", None, REVISION)
    return dataclasses.replace(facts, **changes)


def verified(ok: bool = True) -> SnapshotCheck:
    return SnapshotCheck(
        finished=True, ok=ok, revision=REVISION, sha256="ab" * 32, problem="" if ok else "bad"
    )


def requested(check: SnapshotCheck | None = None, **request: Any) -> RollbackState:
    return RollbackState(RollbackRequest(BACKUP, **request), backup(), check)


def rollback_states(rnd: random.Random) -> RollbackState:
    """Mostly no rollback; else a request (confirmed or not, for a good or a refused backup,
    verified or not) and/or a record of any phase."""
    if rnd.random() >= 0.08:
        return RollbackState()
    request = None
    if rnd.random() < 0.7:
        request = RollbackRequest(BACKUP, confirmed=rnd.random() < 0.9)
    facts = None
    if rnd.random() < 0.9:
        facts = backup(
            phase=rnd.choice(["Succeeded", "Succeeded", "Succeeded", "Failed", "Running"]),
            cluster_name=rnd.choice(["etcd", "etcd", "etcd", "other"]),
            # None: recorded before backups named their cluster's UID.
            cluster_uid=rnd.choice([None, None, "uid", "uid-1", "uid-earlier"]),
        )
    check = rnd.choice([None, SnapshotCheck(), verified(), verified(ok=False)])
    record = None
    if request is None or rnd.random() < 0.5:
        phase = rnd.choice(list(RollbackPhase))
        record = RollbackRecord(phase, BACKUP, BACKUP_UID, rnd.randint(1, 3))
    # spec.recovery FromLatestBackup: the newest backup, offered while no member answers.
    recovery = RollbackRequest(BACKUP, cause="QuorumLoss") if rnd.random() < 0.4 else None
    last_seen = rnd.choice([None, 90])
    return RollbackState(request, facts, check, record, recovery, last_seen)


def with_restored_facts(state: RollbackState, rnd: random.Random) -> RollbackState:
    """A Restoring record with what status saw of the restored members so far (any, in these
    worlds). Drawn after the rest of a world, so that the worlds stay what they were."""
    record = state.record
    if record is None or record.phase is not RollbackPhase.RESTORING or rnd.random() >= 0.5:
        return state
    started = tuple(f"etcd-{i}" for i in range(3) if rnd.random() < 0.4)
    record = dataclasses.replace(record, started=started, formed=rnd.random() < 0.4)
    return dataclasses.replace(state, record=record)
