"""The EtcdBackup API: models, and the CRD generated from them."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.api import InvalidSpecError
from etcd_operator.api.backup import parse_backup
from etcd_operator.api.crd import ETCD_BACKUP, crd, openapi_schema
from etcd_operator.api.structural import structural_errors


def _body(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"clusterName": "demo", **spec}}


def test_exactly_one_destination() -> None:
    parse_backup(_body(destination={"volume": {"claimName": "c"}}))
    with pytest.raises(InvalidSpecError, match="exactly one of s3 and volume"):
        parse_backup(_body(destination={}))
    with pytest.raises(InvalidSpecError, match="exactly one of s3 and volume"):
        parse_backup(_body(destination={"s3": {"bucket": "bkt"}, "volume": {"claimName": "c"}}))


def test_paths_stay_inside_the_claim_or_prefix() -> None:
    with pytest.raises(InvalidSpecError, match=r"destination\.volume\.path"):
        parse_backup(_body(destination={"volume": {"claimName": "c", "path": "/etc"}}))


def test_kms_key_only_with_kms_and_defaults() -> None:
    backup = parse_backup(_body(destination={"s3": {"bucket": "bkt"}}))
    assert backup.spec.backoff_limit == 2
    assert backup.spec.destination.s3 is not None
    assert backup.spec.destination.s3.force_path_style is False


def test_the_crd_is_structural_immutable_and_has_no_empty_spec_default() -> None:
    schema = openapi_schema(ETCD_BACKUP)
    assert structural_errors(schema) == []
    spec = schema["properties"]["spec"]
    assert "default" not in spec  # clusterName and destination are required
    assert spec["required"] == ["clusterName", "destination"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert rules == ["self == oldSelf"]
    destination = spec["properties"]["destination"]
    assert [r["rule"] for r in destination["x-kubernetes-validations"]] == [
        "has(self.s3) != has(self.volume)"
    ]
    columns = [
        c["name"] for c in crd(ETCD_BACKUP)["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert columns == ["Cluster", "Phase", "Revision", "Size", "Age", "Location"]


def test_the_examples_are_valid_backups() -> None:
    from pathlib import Path

    import yaml

    path = Path(__file__).parents[3] / "examples" / "etcdbackup.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "EtcdBackup"]
    backups = [parse_backup({**d, "metadata": {**d["metadata"], "namespace": "ns"}}) for d in docs]
    assert [b.spec.destination.s3 is not None for b in backups] == [True, False]
