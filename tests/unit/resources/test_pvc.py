"""The member's data claim."""

from __future__ import annotations

import pytest

from etcd_operator.resources import member_pvc
from unit.support.clusters import make_cluster


def test_claim_is_named_after_the_member_with_the_spec_size() -> None:
    pvc = member_pvc(make_cluster(storage={"size": "8Gi", "storageClassName": "fast"}), "demo-0")
    data = pvc.to_dict()
    assert data["metadata"]["name"] == "demo-0"
    assert data["metadata"]["labels"]["etcd.operator.io/member"] == "demo-0"
    assert data["metadata"]["labels"]["app.kubernetes.io/component"] == "member"
    assert data["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert data["spec"]["resources"] == {"requests": {"storage": "8Gi"}}
    assert data["spec"]["storageClassName"] == "fast"


def test_default_class_is_left_to_the_cluster() -> None:
    assert "storageClassName" not in member_pvc(make_cluster(), "demo-0").to_dict()["spec"]


def test_retained_claims_have_no_owner_so_deleting_the_cluster_keeps_them() -> None:
    assert "ownerReferences" not in member_pvc(make_cluster(), "demo-0").to_dict()["metadata"]


def test_claims_are_owned_by_the_cluster_when_deleted_with_it() -> None:
    cluster = make_cluster(pvcRetentionPolicy={"whenDeleted": "Delete"})
    [owner] = member_pvc(cluster, "demo-0").to_dict()["metadata"]["ownerReferences"]
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    assert owner["uid"] == "uid-1"


def test_empty_dir_clusters_have_no_claims() -> None:
    with pytest.raises(ValueError, match="emptyDir"):
        member_pvc(make_cluster(storage={"emptyDir": True}), "demo-0")


def test_claim_records_the_cluster_uid_and_may_take_another_name() -> None:
    data = member_pvc(make_cluster(), "demo-0", "demo-0-1").to_dict()["metadata"]
    assert data["name"] == "demo-0-1"
    assert data["labels"]["etcd.operator.io/cluster-uid"] == "uid-1"
    assert data["labels"]["etcd.operator.io/member"] == "demo-0"
