"""Prometheus series about the operator and each cluster it manages.

One registry of our own (not the process-global default) so tests and the HTTP endpoint see
exactly these series. Per-cluster series carry `namespace` and `name` labels and are
dropped when the cluster's loop ends, so a deleted cluster leaves no stale series.

`record_round` takes what a round saw and did; `set_last_backup` is the hook backups call
after a snapshot is stored; `record_drill` the one restore drills call with the result their
status records (every round of a finished drill, so a restarted operator exports them again).
Drill series are labelled by the backed-up cluster and outlive its loop: a drill's result is
a fact about its backups, not about the running cluster.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# etcd's default --quota-backend-bytes (2 GiB), when the spec sets none.
DEFAULT_QUOTA_BYTES = 2 * 1024**3

_CLUSTER = ("namespace", "name")

MEMBERS_DESIRED = Gauge(
    "etcd_operator_cluster_members_desired", "spec.replicas", _CLUSTER, registry=REGISTRY
)
MEMBERS_READY = Gauge(
    "etcd_operator_cluster_members_ready",
    "Members whose pod is ready and whose endpoint answered healthy",
    _CLUSTER,
    registry=REGISTRY,
)
MEMBERS_VOTING = Gauge(
    "etcd_operator_cluster_members_voting",
    "Voting members in etcd's member list",
    _CLUSTER,
    registry=REGISTRY,
)
MEMBERS_LEARNER = Gauge(
    "etcd_operator_cluster_members_learner",
    "Learners in etcd's member list",
    _CLUSTER,
    registry=REGISTRY,
)
LEADER_CHANGES = Counter(
    "etcd_operator_cluster_leader_changes",
    "Changes of the etcd leader between two rounds",
    _CLUSTER,
    registry=REGISTRY,
)
DB_SIZE = Gauge(
    "etcd_operator_cluster_db_size_bytes",
    "Largest backend size among members (what the quota is checked against)",
    _CLUSTER,
    registry=REGISTRY,
)
DB_IN_USE = Gauge(
    "etcd_operator_cluster_db_size_in_use_bytes",
    "Largest in-use backend size among members (after a defragmentation the size falls to it)",
    _CLUSTER,
    registry=REGISTRY,
)
DB_QUOTA = Gauge(
    "etcd_operator_cluster_db_quota_bytes",
    "The backend quota (--quota-backend-bytes)",
    _CLUSTER,
    registry=REGISTRY,
)
DIVERGED_MEMBERS = Gauge(
    "etcd_operator_cluster_diverged_members",
    "Members whose HashKV differed from the majority's at the last corruption check",
    _CLUSTER,
    registry=REGISTRY,
)
LAST_BACKUP = Gauge(
    "etcd_operator_cluster_last_backup_timestamp_seconds",
    "When the last backup of the cluster was stored (Unix time)",
    _CLUSTER,
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "etcd_operator_cluster_last_successful_round_timestamp_seconds",
    "When a round of the cluster last ended without an error (Unix time); time since it:"
    " time() - this",
    _CLUSTER,
    registry=REGISTRY,
)
ROUNDS = Counter(
    "etcd_operator_reconcile_rounds",
    "Reconcile rounds by the kind of step applied",
    (*_CLUSTER, "step"),
    registry=REGISTRY,
)
ERRORS = Counter(
    "etcd_operator_reconcile_errors",
    "Reconcile rounds that ended in an error, by the kind of step tried",
    (*_CLUSTER, "step"),
    registry=REGISTRY,
)
DURATION = Histogram(
    "etcd_operator_reconcile_duration_seconds",
    "Duration of reconcile rounds by the kind of step applied",
    ("step",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
IS_LEADER = Gauge(
    "etcd_operator_leader",
    "1 while this replica holds the leader-election Lease (or runs standalone)",
    registry=REGISTRY,
)
LEADERSHIP_CHANGES = Counter(
    "etcd_operator_leadership_changes",
    "Times this replica gained or lost the leader-election Lease",
    registry=REGISTRY,
)

DRILL_RESULT = Gauge(
    "etcd_operator_restore_drill_last_result",
    "Result of the latest restore drill of a backup of the cluster: 1 passed, 0 failed",
    _CLUSTER,
    registry=REGISTRY,
)
DRILL_LAST_SUCCESS = Gauge(
    "etcd_operator_restore_drill_last_success_timestamp_seconds",
    "When a restore drill of a backup of the cluster last passed (Unix time; 0: none passed)",
    _CLUSTER,
    registry=REGISTRY,
)

_PER_CLUSTER: tuple[Gauge | Counter, ...] = (
    MEMBERS_DESIRED,
    MEMBERS_READY,
    MEMBERS_VOTING,
    MEMBERS_LEARNER,
    LEADER_CHANGES,
    DB_SIZE,
    DB_IN_USE,
    DB_QUOTA,
    LAST_BACKUP,
    LAST_SUCCESS,
    DIVERGED_MEMBERS,
)
_PER_STEP: tuple[Counter, ...] = (ROUNDS, ERRORS)
# The etcd leader each cluster had at its last round (to count changes).
_leaders: dict[tuple[str, str], int] = {}
_steps: dict[tuple[str, str], set[str]] = {}
# The latest stored backup per cluster: backups are handled in any order (several at once, all
# of them again after a restart), and an older one must not move the series back.
_last_backups: dict[tuple[str, str], float] = {}


@dataclass(frozen=True, slots=True)
class ClusterFigures:
    """What one round saw of a cluster, reduced to the numbers exported."""

    desired: int
    ready: int
    voting: int | None  # None: the member list was not read this round
    learners: int | None
    leader_id: int | None
    db_size: int | None
    db_in_use: int | None
    quota: int
    # The last corruption check's diverged members; None: no check ran this round.
    diverged: int | None = None


def record_round(
    namespace: str,
    name: str,
    figures: ClusterFigures,
    *,
    step: str,
    seconds: float,
    error: bool,
    now: float | None = None,
) -> None:
    key = (namespace, name)
    MEMBERS_DESIRED.labels(*key).set(figures.desired)
    MEMBERS_READY.labels(*key).set(figures.ready)
    if figures.voting is not None and figures.learners is not None:
        MEMBERS_VOTING.labels(*key).set(figures.voting)
        MEMBERS_LEARNER.labels(*key).set(figures.learners)
    changes = LEADER_CHANGES.labels(*key)  # exported (as 0) from the first round
    if figures.leader_id:
        before = _leaders.get(key)
        if before is not None and before != figures.leader_id:
            changes.inc()
        _leaders[key] = figures.leader_id
    if figures.db_size is not None:
        DB_SIZE.labels(*key).set(figures.db_size)
    if figures.db_in_use is not None:
        DB_IN_USE.labels(*key).set(figures.db_in_use)
    DB_QUOTA.labels(*key).set(figures.quota)
    if figures.diverged is not None:
        DIVERGED_MEMBERS.labels(*key).set(figures.diverged)
    _steps.setdefault(key, set()).add(step)
    ROUNDS.labels(*key, step).inc()
    errors = ERRORS.labels(*key, step)
    DURATION.labels(step).observe(seconds)
    if error:
        errors.inc()
    else:
        LAST_SUCCESS.labels(*key).set(time.time() if now is None else now)


def record_error(namespace: str, name: str, *, step: str = "none") -> None:
    """A round that failed before it decided a step (an exception)."""
    _steps.setdefault((namespace, name), set()).add(step)
    ERRORS.labels(namespace, name, step).inc()


def set_last_backup(namespace: str, name: str, at: float) -> None:
    """Hook for backups: a snapshot of the cluster was stored at `at` (Unix time); the series
    keeps the latest."""
    key = (namespace, name)
    latest = max(at, _last_backups.get(key, at))
    _last_backups[key] = latest
    LAST_BACKUP.labels(*key).set(latest)


# Per cluster: the completion time of the drill whose result is exported, and of the latest
# passed one (drills are reported in any order: after a restart, each restore's first round).
_drill_latest: dict[tuple[str, str], float] = {}
_drill_passed: dict[tuple[str, str], float] = {}


def record_drill(namespace: str, name: str, *, passed: bool, at: float) -> None:
    """A restore drill of a backup of `namespace/name` completed at `at` (Unix time). The
    latest completion decides the result; a cluster with no passed drill exports 0 as its
    last success, so "no successful drill in N days" fires for it as well."""
    key = (namespace, name)
    if at >= _drill_latest.get(key, float("-inf")):
        _drill_latest[key] = at
        DRILL_RESULT.labels(*key).set(1 if passed else 0)
    if passed and at > _drill_passed.get(key, 0.0):
        _drill_passed[key] = at
    DRILL_LAST_SUCCESS.labels(*key).set(_drill_passed.get(key, 0.0))


def set_leader(leader: bool) -> None:
    IS_LEADER.set(1 if leader else 0)
    LEADERSHIP_CHANGES.inc()


def forget_cluster(namespace: str, name: str) -> None:
    """The cluster's loop ended (deleted, or no longer watched): drop its series."""
    key = (namespace, name)
    for metric in _PER_CLUSTER:
        with contextlib.suppress(KeyError):
            metric.remove(*key)
    for step in _steps.pop(key, set()):
        for counter in _PER_STEP:
            with contextlib.suppress(KeyError):
                counter.remove(*key, step)
    _leaders.pop(key, None)
    _last_backups.pop(key, None)


def max_or_none(values: Iterable[int]) -> int | None:
    found = list(values)
    return max(found) if found else None


def exposition() -> bytes:
    return generate_latest(REGISTRY)
