"""An object is applied again only when the live one is missing or differs from the built one."""

from __future__ import annotations

import copy
from typing import Any

from etcd_operator.resources import client_service, pod_disruption_budget
from etcd_operator.resources.applied import needs_apply, stamped
from etcd_operator.resources.labels import APPLIED_HASH_ANNOTATION
from unit.support.clusters import make_cluster


def _live(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns for an applied object: defaults and extra fields added."""
    live = copy.deepcopy(desired)
    live["metadata"].update(resourceVersion="42", uid="u", managedFields=[{"manager": "x"}])
    live["metadata"]["labels"]["team"] = "storage"  # someone else's label
    live["spec"].update(clusterIP="10.0.0.7", clusterIPs=["10.0.0.7"], sessionAffinity="None")
    for port in live["spec"]["ports"]:
        port["appProtocol"] = "grpc"
    live["status"] = {"loadBalancer": {}}
    return live


def _service() -> dict[str, Any]:
    body: dict[str, Any] = stamped(client_service(make_cluster())).to_dict()
    return body


def test_a_live_object_with_only_server_added_fields_needs_no_apply() -> None:
    desired = _service()
    assert not needs_apply(desired, _live(desired))


def test_a_listed_item_without_kind_is_compared_by_its_content() -> None:
    desired = _service()
    live = _live(desired)
    del live["apiVersion"], live["kind"]
    assert not needs_apply(desired, live)


def test_a_missing_object_needs_apply() -> None:
    assert needs_apply(_service(), None)


def test_a_field_edited_by_hand_needs_apply() -> None:
    desired = _service()
    live = _live(desired)
    live["spec"]["selector"]["app.kubernetes.io/instance"] = "other"
    assert needs_apply(desired, live)


def test_a_list_of_another_length_needs_apply() -> None:
    desired = _service()
    live = _live(desired)
    live["spec"]["ports"].append({"name": "extra", "port": 1})
    assert needs_apply(desired, live)


def test_the_hash_tells_a_change_in_what_the_operator_builds() -> None:
    desired = _service()
    live = _live(desired)
    live["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = "0123456789abcdef"
    assert needs_apply(desired, live)


def test_the_hash_depends_on_the_content_only() -> None:
    cluster = make_cluster(replicas=5)
    a = stamped(pod_disruption_budget(cluster, voting_members=5)).metadata
    b = stamped(pod_disruption_budget(cluster, voting_members=5)).metadata
    c = stamped(pod_disruption_budget(cluster, voting_members=3)).metadata
    assert a and b and c and a.annotations and b.annotations and c.annotations
    assert a.annotations == b.annotations
    assert a.annotations[APPLIED_HASH_ANNOTATION] != c.annotations[APPLIED_HASH_ANNOTATION]
