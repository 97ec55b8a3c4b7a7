"""The rollback's shell: its API calls are declared, the verification pod checks the backup's
snapshot with the cluster's etcd, and status.rollback changes only at a RecordRollback step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from lightkube.resources.core_v1 import Pod

from etcd_operator import rbac
from etcd_operator.api import EtcdClusterStatus
from etcd_operator.api.backup import parse_backup
from etcd_operator.api.cluster_status import RollbackStatus
from etcd_operator.api.snapshot_source import SnapshotLocation, VolumeSnapshotSource
from etcd_operator.handlers import apply
from etcd_operator.handlers.observe import World
from etcd_operator.handlers.rollback import (
    RollbackSeen,
    next_rollback_status,
    observe_rollback,
    record_of,
    snapshot_of,
    verification_pod_name,
)
from etcd_operator.kube import EtcdBackupResource
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.planner import (
    Decision,
    InSync,
    Reason,
    RecordRollback,
    RollbackPhase,
    VerifyBackup,
)
from etcd_operator.planner.model import RollbackRecord, RollbackState
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient
from unit.support.observed import cluster as observed_cluster

SHA = "cd" * 32
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def _backup() -> Any:
    return parse_backup(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdBackup",
            "metadata": {"name": "nightly", "namespace": "ns", "uid": "backup-uid"},
            "spec": {"clusterName": "demo", "destination": {"volume": {"claimName": "backups"}}},
            "status": {
                "phase": "Succeeded",
                "location": "file:///var/lib/etcd-backup/demo/nightly.db",
                "sha256": SHA,
                "revision": 42,
                "completionTime": "2026-11-30T06:00:00Z",
            },
        }
    )


def _seen() -> RollbackSeen:
    location = SnapshotLocation(
        volume=VolumeSnapshotSource(claim_name="backups", path="demo/nightly.db"), sha256=SHA
    )
    return RollbackSeen(RollbackState(), _backup(), location)


def _granted() -> set[tuple[str, str, str]]:
    return {(r.group, r.resource, r.verb) for r in rbac.declared() if not r.operator_namespace}


async def test_the_verification_pod_and_its_removal_are_declared_calls() -> None:
    cluster = make_cluster(version="3.6.16")
    kube = RecordingClient({})
    world = World(observed_cluster(3), {}, None, {}, rollback=_seen())
    for step in (
        VerifyBackup("nightly", "backup-uid"),
        RecordRollback(RollbackPhase.COMPLETED, "nightly", "backup-uid", 1),
    ):
        await apply.apply_step(
            kube,  # type: ignore[arg-type]
            cluster,
            world,
            step,
            cluster_domain=DEFAULT_CLUSTER_DOMAIN,
        )
    assert ("", "pods", "create") in kube.calls and ("", "pods", "delete") in kube.calls
    assert kube.calls <= _granted(), kube.calls - _granted()
    pod = next(obj for verb, obj in kube.written if verb == "create")
    assert isinstance(pod, Pod) and pod.metadata and pod.spec
    assert pod.metadata.name == verification_pod_name(cluster, "backup-uid")
    assert pod.metadata.ownerReferences and pod.metadata.ownerReferences[0].name == "demo"
    fetch = pod.spec.initContainers[0] if pod.spec.initContainers else None
    assert fetch is not None and f"--sha256={SHA}" in (fetch.args or [])
    # The check runs the etcd the cluster runs.
    assert pod.spec.containers[0].image is not None
    assert "3.6.16" in pod.spec.containers[0].image


async def test_observe_reads_the_backup_and_whether_the_confirmation_names_both() -> None:
    cluster = make_cluster(rollback={"backup": "nightly", "confirm": "other/nightly"})
    kube = RecordingClient({})
    seen = await observe_rollback(kube, cluster, answered=True)  # type: ignore[arg-type]
    assert seen.state.request is not None and not seen.state.request.confirmed
    assert ("etcd.operator.io", "etcdbackups", "get") in kube.calls
    assert kube.calls <= _granted(), kube.calls - _granted()
    confirmed = make_cluster(rollback={"backup": "nightly", "confirm": "demo/nightly"})
    seen = await observe_rollback(RecordingClient({}), confirmed, answered=True)  # type: ignore[arg-type]
    assert seen.state.request is not None and seen.state.request.confirmed


def test_status_records_the_start_with_everything_a_resumed_rollback_needs() -> None:
    step = RecordRollback(
        RollbackPhase.STOPPING,
        "nightly",
        "backup-uid",
        2,
        revision=42,
        sha256=SHA,
        from_revision=90,
    )
    status = next_rollback_status(
        Decision(step, Reason.ROLLBACK_STARTED, "rolling back"),
        None,
        _seen(),
        cluster_id="abc",
        now=NOW,
    )
    assert status is not None
    assert (status.phase, status.epoch, status.revision, status.from_revision) == (
        "Stopping",
        2,
        42,
        90,
    )
    assert status.from_cluster_id == "abc" and status.start_time == NOW
    assert status.backup_completion_time == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    with_status = make_cluster().model_copy(update={"status": EtcdClusterStatus(rollback=status)})
    assert snapshot_of(with_status) == _seen().location  # what Restoring's pods read
    # Nothing else changes it; completion keeps the start and says what was rolled back.
    same = next_rollback_status(
        Decision(InSync(), Reason.IN_SYNC, "in sync"),
        status,
        RollbackSeen(RollbackState()),
        cluster_id=None,
        now=NOW,
    )
    assert same is status
    done = next_rollback_status(
        Decision(
            RecordRollback(RollbackPhase.COMPLETED, "nightly", "backup-uid", 2),
            Reason.ROLLBACK_COMPLETED,
            "done",
        ),
        status,
        RollbackSeen(RollbackState()),
        cluster_id=None,
        now=NOW,
    )
    assert done is not None and done.phase == "Completed" and done.completion_time == NOW
    assert done.start_time == NOW and "from revision 90 to revision 42" in done.message


def _listed(
    name: str, cluster: str, phase: str, completed: str, cluster_uid: str | None = None
) -> Any:
    status = {"clusterUID": cluster_uid} if cluster_uid else {}
    return EtcdBackupResource.from_dict(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdBackup",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
            "spec": {"clusterName": cluster, "destination": {"volume": {"claimName": "b"}}},
            "status": {
                "phase": phase,
                "location": f"file:///var/lib/etcd-backup/{name}.db",
                "completionTime": completed,
                **status,
            },
        }
    )


async def test_quorum_loss_recovery_offers_the_newest_succeeded_backup_of_this_cluster() -> None:
    cluster = make_cluster(recovery={"quorumLoss": "FromLatestBackup"})
    backups = [
        _listed("old", "demo", "Succeeded", "2026-11-29T00:00:00Z"),
        _listed("newest", "demo", "Succeeded", "2026-11-30T05:00:00Z"),
        _listed("failed", "demo", "Failed", "2026-11-30T06:00:00Z"),
        _listed("others", "other", "Succeeded", "2026-11-30T06:30:00Z"),
        # An earlier EtcdCluster of the same name: never this one's data.
        _listed("earlier", "demo", "Succeeded", "2026-11-30T07:00:00Z", cluster_uid="uid-gone"),
    ]
    kube = RecordingClient({}, listed={EtcdBackupResource: backups})
    seen = await observe_rollback(kube, cluster, answered=False)  # type: ignore[arg-type]
    assert seen.state.recovery is not None and seen.state.recovery.backup == "newest"
    assert seen.state.recovery.cause == "QuorumLoss" and seen.state.request is None
    assert seen.state.backup is not None and seen.state.backup.uid == "uid-newest"
    assert kube.calls <= _granted(), kube.calls - _granted()
    # While members answer nothing is listed.
    quiet = RecordingClient({}, listed={EtcdBackupResource: backups})
    seen = await observe_rollback(quiet, cluster, answered=True)  # type: ignore[arg-type]
    assert seen.state.recovery is None and not quiet.calls


async def test_quorum_loss_recovery_never_offers_an_earlier_clusters_backup_but_names_it() -> None:
    """The cluster was deleted and created again under the same name: its predecessor's
    backups are the only Succeeded ones named for it. None is offered; each is reported."""
    cluster = make_cluster(recovery={"quorumLoss": "FromLatestBackup"})
    backups = [
        _listed("gone-a", "demo", "Succeeded", "2026-11-30T07:00:00Z", cluster_uid="uid-gone"),
        _listed("gone-b", "demo", "Succeeded", "2026-11-30T08:00:00Z", cluster_uid="uid-gone"),
        _listed("gone-failed", "demo", "Failed", "2026-11-30T09:00:00Z", cluster_uid="uid-gone"),
        _listed("others", "other", "Succeeded", "2026-11-30T06:30:00Z", cluster_uid="uid-x"),
    ]
    kube = RecordingClient({}, listed={EtcdBackupResource: backups})
    seen = await observe_rollback(kube, cluster, answered=False)  # type: ignore[arg-type]
    assert seen.state.recovery is None and seen.state.backup is None
    assert [(b.name, b.cluster_uid) for b in seen.state.earlier] == [
        ("gone-a", "uid-gone"),
        ("gone-b", "uid-gone"),
    ]
    assert kube.calls <= _granted(), kube.calls - _granted()


def test_a_recovery_record_keeps_the_request_done_before_it() -> None:
    """status.rollback of a FromLatestBackup recovery names the backup it restored, and keeps
    the spec.rollback request an earlier rollback did, so that request is never done again."""
    requested = RollbackStatus(phase="Completed", backup="nightly", backup_uid="backup-uid")
    before = make_cluster().model_copy(update={"status": EtcdClusterStatus(rollback=requested)})
    record = record_of(before)
    assert record is not None and (record.requested, record.requested_uid) == (
        "nightly",
        "backup-uid",
    )
    step = RecordRollback(RollbackPhase.STOPPING, "newest", "uid-newest", 2, cause="QuorumLoss")
    seen = RollbackSeen(RollbackState(record=record), _backup(), _seen().location)
    status = next_rollback_status(
        Decision(step, Reason.ROLLBACK_STARTED, "recovering"),
        requested,
        seen,
        cluster_id=None,
        now=NOW,
    )
    assert status is not None and status.backup == "newest" and status.cause == "QuorumLoss"
    assert (status.requested_backup, status.requested_backup_uid) == ("nightly", "backup-uid")
    after = make_cluster().model_copy(update={"status": EtcdClusterStatus(rollback=status)})
    record = record_of(after)
    assert record is not None and record.backup == "newest" and record.requested == "nightly"
    # A requested rollback names only its own backup.
    step = replace(step, cause="Requested")
    status = next_rollback_status(
        Decision(step, Reason.ROLLBACK_STARTED, "rolling back"),
        requested,
        seen,
        cluster_id=None,
        now=NOW,
    )
    assert status is not None and status.requested_backup is None


async def test_a_request_done_before_a_recovery_is_neither_read_again_nor_in_its_way() -> None:
    spec = {"backup": "nightly", "confirm": "demo/nightly"}
    record = RollbackStatus(
        phase="Completed",
        cause="QuorumLoss",
        backup="newest",
        backup_uid="uid-newest",
        requested_backup="nightly",
        requested_backup_uid="backup-uid",
    )
    cluster = make_cluster(rollback=spec, recovery={"quorumLoss": "FromLatestBackup"})
    cluster = cluster.model_copy(update={"status": EtcdClusterStatus(rollback=record)})
    kube = RecordingClient({})
    seen = await observe_rollback(kube, cluster, answered=True)  # type: ignore[arg-type]
    assert seen.backup is None and not kube.calls  # done: the backup is not even read
    # Lost again: the recovery lists the backups, the done request does not stand in its way.
    backups = [_listed("newest", "demo", "Succeeded", "2026-11-30T05:00:00Z")]
    kube = RecordingClient({}, listed={EtcdBackupResource: backups})
    seen = await observe_rollback(kube, cluster, answered=False)  # type: ignore[arg-type]
    assert seen.state.recovery is not None and seen.state.recovery.backup == "newest"


def test_what_was_seen_of_the_restored_members_is_recorded_and_read_back() -> None:
    start = RecordRollback(RollbackPhase.STOPPING, "nightly", "backup-uid", 2, revision=42)
    stopping = next_rollback_status(
        Decision(start, Reason.ROLLBACK_STARTED, "rolling back"),
        None,
        _seen(),
        cluster_id=None,
        now=NOW,
    )
    assert stopping is not None and stopping.started_members == [] and not stopping.formed
    seen = RecordRollback(
        RollbackPhase.RESTORING, "nightly", "backup-uid", 2, started=("demo-0",), formed=True
    )
    restoring = next_rollback_status(
        Decision(seen, Reason.ROLLBACK_MEMBERS_SEEN, "seen"),
        stopping,
        RollbackSeen(RollbackState()),
        cluster_id=None,
        now=NOW,
    )
    assert restoring is not None
    assert restoring.started_members == ["demo-0"] and restoring.formed
    assert restoring.revision == 42  # the start's facts are kept
    cluster = make_cluster().model_copy(update={"status": EtcdClusterStatus(rollback=restoring)})
    assert record_of(cluster) == RollbackRecord(
        RollbackPhase.RESTORING,
        "nightly",
        "backup-uid",
        2,
        requested="nightly",  # a requested rollback: the request done is its own backup
        requested_uid="backup-uid",
        started=("demo-0",),
        formed=True,
    )
    wire = restoring.model_dump(by_alias=True, mode="json")
    assert wire["startedMembers"] == ["demo-0"] and wire["formed"] is True
