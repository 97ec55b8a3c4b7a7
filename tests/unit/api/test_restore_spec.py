"""EtcdRestore and spec.bootstrap.restore: models and the CEL rules the CRD carries."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.api import InvalidSpecError, parse_spec
from etcd_operator.api.crd import ETCD_CLUSTER, ETCD_RESTORE, crd, openapi_schema
from etcd_operator.api.restore import RestorePhase, parse_restore

SHA = "a" * 64


def _restore(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "r", "namespace": "ns"}, "spec": spec}


def _valid_spec() -> dict[str, Any]:
    return {
        "source": {"volume": {"claimName": "backups", "path": "snap/a.db"}, "sha256": SHA},
        "cluster": {"name": "restored", "spec": {"replicas": 3}},
    }


def test_a_restore_reads_its_source_and_cluster() -> None:
    restore = parse_restore(_restore(_valid_spec()))
    assert restore.spec.source.volume is not None
    assert restore.spec.source.volume.claim_name == "backups"
    assert restore.spec.source.sha256 == SHA
    assert restore.spec.cluster.name == "restored"
    assert restore.spec.cluster.spec.replicas == 3
    assert restore.status.phase is RestorePhase.PENDING


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": {"sha256": SHA}}, "exactly one snapshot source"),
        (
            {"source": {"backup": {"name": "b"}, "volume": {"claimName": "b", "path": "a"}}},
            "exactly one snapshot source",
        ),
        ({"source": {"volume": {"claimName": "b", "path": "../etc/passwd"}}}, "segments"),
        ({"source": {"volume": {"claimName": "b", "path": "/abs"}}}, "path"),
        ({"source": {"volume": {"claimName": "b", "path": "a"}, "sha256": "XYZ"}}, "sha256"),
        ({"cluster": {"name": "Bad_Name"}}, "cluster.name"),
        ({"cluster": {"name": "c", "spec": {"replicas": 0}}}, "replicas"),
        (
            {
                "cluster": {
                    "name": "c",
                    "spec": {"bootstrap": {"restore": {"volume": {"claimName": "b", "path": "a"}}}},
                }
            },
            "set by the restore",
        ),
    ],
)
def test_invalid_restores_name_the_problem(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        parse_restore(_restore({**_valid_spec(), **change}))


def test_a_cluster_may_bootstrap_from_a_snapshot() -> None:
    spec = parse_spec({"bootstrap": {"restore": {"volume": {"claimName": "b", "path": "x.db"}}}})
    assert spec.bootstrap.restore is not None
    assert spec.bootstrap.restore.describe() == "claim b path x.db"
    assert parse_spec({}).bootstrap.restore is None


def test_the_schemas_carry_the_rules_the_models_check() -> None:
    cluster = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]["properties"]["bootstrap"]
    assert {"rule": "self == oldSelf", "message": "spec.bootstrap is immutable"} in cluster[
        "x-kubernetes-validations"
    ]
    restore = openapi_schema(ETCD_RESTORE)
    assert restore["required"] == ["spec"]
    spec = restore["properties"]["spec"]
    assert "default" not in spec  # source and cluster are required
    assert {"rule": "self == oldSelf", "message": "spec is immutable"} in spec[
        "x-kubernetes-validations"
    ]
    source_rules = spec["properties"]["source"]["x-kubernetes-validations"]
    assert "has(self.backup)" in source_rules[0]["rule"]
    assert "has(self.s3)" in source_rules[0]["rule"]
    assert crd(ETCD_RESTORE)["metadata"]["name"] == "etcdrestores.etcd.operator.io"


def test_a_restore_may_name_an_s3_object_or_an_etcdbackup() -> None:
    s3 = {
        "bucket": "snaps",
        "key": "a/b.db",
        "endpointURL": "http://s3:9000",
        "forcePathStyle": True,
    }
    restore = parse_restore(_restore({**_valid_spec(), "source": {"s3": s3}}))
    location = restore.spec.source.location()
    assert location is not None and location.describe() == "s3://snaps/a/b.db"
    backup = parse_restore(_restore({**_valid_spec(), "source": {"backup": {"name": "nightly"}}}))
    assert backup.spec.source.location() is None
    assert backup.spec.source.describe() == "EtcdBackup nightly"


def test_a_drill_and_a_ready_timeout_are_opt_in_and_checked() -> None:
    plain = parse_restore(_restore(_valid_spec()))
    assert plain.spec.drill is False and plain.spec.ready_within.total_seconds() == 600
    drill = parse_restore(_restore({**_valid_spec(), "drill": True, "readyTimeout": "1h30m"}))
    assert drill.spec.drill is True and drill.spec.ready_within.total_seconds() == 5400
    with pytest.raises(InvalidSpecError, match=r"ready_timeout|readyTimeout"):
        parse_restore(_restore({**_valid_spec(), "readyTimeout": "10"}))
    schema = openapi_schema(ETCD_RESTORE)["properties"]["spec"]["properties"]
    assert schema["drill"]["default"] is False
    assert schema["readyTimeout"]["default"] == "10m" and "pattern" in schema["readyTimeout"]


def test_the_drill_example_is_a_valid_drill() -> None:
    from pathlib import Path

    import yaml

    path = Path(__file__).parents[3] / "examples" / "etcdrestore-drill.yaml"
    (doc,) = yaml.safe_load_all(path.read_text())
    drill = parse_restore({**doc, "metadata": {**doc["metadata"], "namespace": "ns"}})
    assert drill.spec.drill and drill.spec.source.backup is not None
