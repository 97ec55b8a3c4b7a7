"""EtcdBackupSchedule's API: what is refused (by the CRD's pattern and CEL or, past them, by
the model) and what the CRD says; EtcdBackup's deletionPolicy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from etcd_operator.api import InvalidSpecError
from etcd_operator.api.backup import parse_backup
from etcd_operator.api.backup_schedule import (
    CRON_PATTERN,
    MAX_SCHEDULE_NAME_LENGTH,
    parse_schedule,
)
from etcd_operator.api.crd import ETCD_BACKUP_SCHEDULE, KINDS, crd
from etcd_operator.api.restore import EtcdRestoreSpec
from etcd_operator.backup.schedule import backup_name

DEST = {"s3": {"bucket": "backups"}}


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdBackupSchedule",
        "metadata": {"name": "nightly", "namespace": "ns"},
        "spec": {"clusterName": "demo", "schedule": "0 3 * * *",
                 "backupTemplate": {"destination": DEST}, **spec},
    }  # fmt: skip


def test_defaults_forbid_delete_policy_and_three_failures_kept() -> None:
    spec = parse_schedule(_body()).spec
    assert spec.concurrency_policy == "Forbid" and spec.failed_history_limit == 3
    assert spec.backup_template.deletion_policy == "Delete" and not spec.suspend
    assert spec.retention is None and spec.restore_drill is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schedule", "61 * * * *"),  # passes the CRD's pattern; croniter refuses it
        ("schedule", "* * * * * *"),  # six fields
        ("timeZone", "Mars/Olympus_Mons"),
        ("retention", {}),
        ("retention", {"maxAge": "30d"}),  # days are not a Go duration
        ("retention", {"keepLast": 0}),
        ("concurrencyPolicy", "Allow"),
        ("restoreDrill", {"schedule": "every day"}),
    ],
)
def test_bad_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidSpecError):
        parse_schedule(_body(**{field: value}))


def test_the_crd_refuses_at_admission_what_it_can_express() -> None:
    import re

    schema = crd(ETCD_BACKUP_SCHEDULE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert spec["properties"]["schedule"]["pattern"] == CRON_PATTERN
    assert re.fullmatch(CRON_PATTERN, "*/5 * * * *") and re.fullmatch(CRON_PATTERN, "@daily")
    assert not re.fullmatch(CRON_PATTERN, "* * * *") and not re.fullmatch(CRON_PATTERN, "")
    retention = spec["properties"]["retention"]
    assert any("keepLast" in r["rule"] for r in retention["x-kubernetes-validations"])
    rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    assert rules == [f"size(self.metadata.name) <= {MAX_SCHEDULE_NAME_LENGTH}"]
    assert ETCD_BACKUP_SCHEDULE in KINDS


def test_the_longest_schedule_name_gives_backup_names_that_fit() -> None:
    from datetime import UTC, datetime

    name = "s" * MAX_SCHEDULE_NAME_LENGTH
    assert len(backup_name(name, datetime(2150, 1, 1, tzinfo=UTC))) <= 50


def test_backups_default_to_retain_and_accept_delete() -> None:
    body = {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdBackup",
        "metadata": {"name": "b", "namespace": "ns"},
        "spec": {"clusterName": "demo", "destination": DEST},
    }
    assert parse_backup(body).spec.deletion_policy == "Retain"
    body["spec"] = {**body["spec"], "deletionPolicy": "Delete"}
    assert parse_backup(body).spec.deletion_policy == "Delete"
    body["spec"] = {**body["spec"], "deletionPolicy": "Sometimes"}
    with pytest.raises(InvalidSpecError):
        parse_backup(body)


def test_restores_are_not_drills_unless_asked() -> None:
    spec = {"source": {"backup": {"name": "b"}}, "cluster": {"name": "c"}}
    assert EtcdRestoreSpec.model_validate(spec).drill is False
    assert EtcdRestoreSpec.model_validate({**spec, "drill": True}).drill is True


def test_the_example_is_a_valid_schedule() -> None:
    path = Path(__file__).parents[3] / "examples" / "etcdbackupschedule.yaml"
    [doc] = yaml.safe_load_all(path.read_text())
    schedule = parse_schedule({**doc, "metadata": {**doc["metadata"], "namespace": "ns"}})
    assert schedule.spec.retention is not None and schedule.spec.retention.keep_last == 24
