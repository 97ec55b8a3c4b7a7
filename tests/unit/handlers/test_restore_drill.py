"""A restore drill through the EtcdRestore shell against the in-memory API of
test_etcdrestore: the throwaway cluster is one member on an emptyDir, owned by the restore and
labelled; the result is recorded before the cluster is deleted, a round killed in between
deletes it on the next one; the metrics come from status; every call is declared in RBAC."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.resources.core_v1 import Pod

from etcd_operator import metrics, rbac
from etcd_operator.handlers import etcdrestore, restore_drill
from etcd_operator.handlers.restore_drill import Served
from etcd_operator.kube import EtcdBackupResource, EtcdClusterResource
from etcd_operator.resources.restore_drill import DRILL_LABEL, drill_size
from unit.handlers.test_etcdrestore import SHA, FakeApi, _not_found, _phase, _round
from unit.support.objects import Raw


class DrillApi(FakeApi):
    """FakeApi plus the EtcdBackup the drill names, and deletion of the cluster."""

    def __init__(self, backup_keys: int | None) -> None:
        super().__init__()
        self.restore["spec"] = {
            "source": {"backup": {"name": "nightly"}},
            "cluster": {"name": "drill", "spec": {"replicas": 3, "storage": {"size": "100Mi"}}},
            "drill": True,
        }
        self.backup: dict[str, Any] = {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdBackup",
            "metadata": {"name": "nightly", "namespace": "ns"},
            "spec": {"clusterName": "src", "destination": {"volume": {"claimName": "backups"}}},
            "status": {
                "phase": "Succeeded",
                "location": "file:///backup/ns/src/nightly.db",
                "sha256": SHA,
                "revision": 40,
                **({} if backup_keys is None else {"keys": backup_keys}),
            },
        }

    async def get(self, kind: Any, name: str, **kw: Any) -> Any:
        if kind is EtcdBackupResource:
            self._record(kind, "get")
            return Raw(self.backup)
        return await super().get(kind, name, **kw)

    async def delete(self, kind: Any, name: str, **kw: Any) -> None:
        if kind is EtcdClusterResource:
            self._record(kind, "delete")
            if self.cluster is None:
                raise _not_found()
            self.cluster = None
            return
        await super().delete(kind, name, **kw)


def _ready(api: DrillApi) -> None:
    assert api.cluster is not None
    api.cluster["metadata"]["creationTimestamp"] = "2999-01-01T00:00:00Z"  # never timed out
    api.cluster["status"] = {"phase": "Running", "readyReplicas": 1}


async def _to_created_cluster(api: DrillApi) -> None:
    await _round(api)  # verification pod
    assert api.pod is not None
    api.pod.status = Pod.from_dict({"status": {"phase": "Succeeded"}}).status
    await _round(api)  # records what it found, and what the backup promises
    await _round(api)  # removes the pod
    await _round(api)  # creates the throwaway cluster


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        etcdrestore.kopf, "info", lambda *a, **k: seen.append(("Normal", k["reason"], k["message"]))
    )
    monkeypatch.setattr(
        etcdrestore.kopf,
        "warn",
        lambda *a, **k: seen.append(("Warning", k["reason"], k["message"])),
    )
    return seen


def _serve(monkeypatch: pytest.MonkeyPatch, revision: int, keys: int | None) -> list[int | None]:
    asked: list[int | None] = []

    async def serving(kube: Any, cluster: Any, domain: str, count_at: int | None = None) -> Served:
        asked.append(count_at)
        return Served(revision, keys=keys if count_at is not None else None)

    monkeypatch.setattr(etcdrestore, "serving", serving)
    return asked


async def test_a_passing_drill_checks_records_then_deletes_its_throwaway_cluster(
    monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str, str]]
) -> None:
    api = DrillApi(backup_keys=7)
    asked = _serve(monkeypatch, 40, 7)
    await _to_created_cluster(api)
    cluster = api.cluster
    assert cluster is not None
    meta, spec = cluster["metadata"], cluster["spec"]
    assert spec["replicas"] == 1 and spec["storage"]["emptyDir"] is True
    assert spec["storage"]["size"] == "100Mi"  # room enough for a 4096-byte snapshot
    assert meta["labels"][DRILL_LABEL] == "r" and spec["podTemplate"]["labels"][DRILL_LABEL] == "r"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "EtcdRestore",
        "r",
        "u-1",
        True,
    )
    drill = api.restore["status"]["drill"]
    assert (drill["expectedRevision"], drill["expectedKeys"], drill["sourceCluster"]) == (
        40,
        7,
        "src",
    )
    _ready(api)
    assert not await _round(api)  # checks and records; the cluster is still there
    assert asked == [40]  # keys counted at the backup's revision
    assert api.restore["status"]["drill"]["result"] == "Passed" and api.cluster is not None
    assert _phase(api) == "Restoring"
    assert not await _round(api)  # deletes it
    assert api.cluster is None
    assert await _round(api)  # ends with the recorded result
    assert _phase(api) == "Succeeded"
    assert ("Normal", "DrillPassed") in {(t, r) for t, r, _ in events}
    samples = metrics.exposition().decode()
    assert 'etcd_operator_restore_drill_last_result{name="src",namespace="ns"} 1.0' in samples
    granted = {(r.group, r.resource, r.verb) for r in rbac.declared()}
    assert ("etcd.operator.io", "etcdclusters", "delete") in api.calls
    assert api.calls <= granted, api.calls - granted


async def test_a_drill_missing_keys_fails_loudly_and_a_round_killed_before_deleting_deletes(
    monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str, str]]
) -> None:
    api = DrillApi(backup_keys=7)
    _serve(monkeypatch, 40, 6)
    await _to_created_cluster(api)
    _ready(api)

    async def killed(*_: Any, **__: Any) -> None:
        raise RuntimeError("operator killed")

    monkeypatch.setattr(api, "delete", killed)
    await _round(api)  # the check is recorded
    with pytest.raises(RuntimeError):
        await _round(api)  # killed while deleting
    assert api.restore["status"]["drill"]["result"] == "Failed" and api.cluster is not None
    monkeypatch.undo()  # a new operator: the next round deletes, then ends Failed
    _serve(monkeypatch, 40, 6)
    monkeypatch.setattr(etcdrestore.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(
        etcdrestore.kopf,
        "warn",
        lambda *a, **k: events.append(("Warning", k["reason"], k["message"])),
    )
    await _round(api)
    assert api.cluster is None
    assert await _round(api) and _phase(api) == "Failed"
    drill = api.restore["status"]["drill"]
    assert (drill["servedKeys"], drill["expectedKeys"], drill["reason"]) == (
        6,
        7,
        "KeyCountMismatch",
    )
    warnings = [(r, m) for t, r, m in events if t == "Warning"]
    assert warnings and warnings[0][0] == "KeyCountMismatch" and "6 keys" in warnings[0][1]
    samples = metrics.exposition().decode()
    assert 'etcd_operator_restore_drill_last_result{name="src",namespace="ns"} 0.0' in samples


def test_the_throwaway_emptydir_has_room_for_the_snapshot() -> None:
    assert drill_size("1Gi", 100 * 1024 * 1024) == "1Gi"
    assert drill_size("1Gi", 1024**3) == f"{2 * 1024 + 64}Mi"
    assert drill_size("10Mi", None) == "10Mi"


def test_the_drill_module_exports_what_the_shell_uses() -> None:
    assert restore_drill.serving is not None and restore_drill.drill_seen is not None


async def test_a_drill_refused_at_verification_is_reported_under_the_backups_cluster(
    monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str, str]]
) -> None:
    api = DrillApi(backup_keys=7)
    api.backup["spec"]["clusterName"] = "refused-src"
    await _round(api)
    assert api.pod is not None
    api.pod.status = Pod.from_dict(
        {
            "status": {
                "phase": "Failed",
                "initContainerStatuses": [
                    {
                        "name": "snapshot-fetch",
                        "state": {"terminated": {"exitCode": 46}},
                        "ready": False,
                        "restartCount": 0,
                        "image": "i",
                        "imageID": "",
                    }
                ],
            }
        }
    ).status
    api.logs["snapshot-fetch"] = ["snapshot-fetch: SHA256Mismatch: not the recorded one"]
    assert await _round(api)
    drill = api.restore["status"]["drill"]
    assert (drill["result"], drill["reason"], drill["sourceCluster"]) == (
        "Failed",
        "SHA256Mismatch",
        "refused-src",
    )
    assert api.cluster is None
    assert ("Warning", "SHA256Mismatch") in {(t, r) for t, r, _ in events}
    samples = metrics.exposition().decode()
    assert 'etcd_operator_restore_drill_last_result{name="refused-src",namespace="ns"} 0.0' in (
        samples
    )
