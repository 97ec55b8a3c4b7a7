"""The generated CRD: structural, defaulted like the models, with CEL rules and columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from pydantic import BaseModel

from etcd_operator.api import EtcdClusterSpec, parse_spec
from etcd_operator.api.crd import ETCD_CLUSTER, crd, openapi_schema
from etcd_operator.api.schema import SchemaConversionError, model_schema
from etcd_operator.api.structural import apply_defaults, structural_errors, value_errors

REPO = Path(__file__).resolve().parents[3]


def _version() -> dict[str, Any]:
    versions: list[dict[str, Any]] = crd(ETCD_CLUSTER)["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_crd_names_the_group_kind_and_short_names() -> None:
    definition = crd(ETCD_CLUSTER)
    assert definition["metadata"]["name"] == "etcdclusters.etcd.operator.io"
    names = definition["spec"]["names"]
    assert names["kind"] == "EtcdCluster"
    assert names["plural"] == "etcdclusters"
    assert names["shortNames"] == ["etcdc", "ec"]
    assert definition["spec"]["scope"] == "Namespaced"
    assert _version()["name"] == "v1alpha1"
    assert _version()["storage"] is True


def test_status_and_scale_subresources_and_printer_columns() -> None:
    version = _version()
    # `kubectl scale etcdcluster NAME --replicas=N` sets spec.replicas.
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Replicas", "Ready", "Version", "Phase", "Age", "Leader"]
    assert columns["Ready"]["jsonPath"] == ".status.readyReplicas"
    assert columns["Leader"]["priority"] == 1
    assert "priority" not in columns["Phase"]


def test_schema_is_structural() -> None:
    schema = openapi_schema(ETCD_CLUSTER)
    assert structural_errors(schema) == []
    for node in _walk(schema):
        assert "$ref" not in node and "$defs" not in node and "title" not in node
        assert "nullable" not in node
        if "anyOf" in node:  # only the int-or-string form
            assert node.get("x-kubernetes-int-or-string") is True


def test_structural_check_catches_what_the_server_rejects() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/x"},
            "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"type": "array"},
            "d": {
                "type": "object",
                "properties": {"x": {"type": "string"}},
                "additionalProperties": {},
            },
            "e": {"type": "integer", "default": "three"},
        },
    }
    errors = "\n".join(structural_errors(bad))
    for expected in ("$ref", "anyOf", "arrays need items", "mutually exclusive", "want integer"):
        assert expected in errors


def test_spec_schema_carries_defaults_for_the_server() -> None:
    spec = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]
    props = spec["properties"]
    assert spec["default"] == {}
    assert props["replicas"]["default"] == 3
    assert (props["replicas"]["minimum"], props["replicas"]["maximum"]) == (1, 9)
    assert props["version"]["default"] == "3.6.16"
    assert props["version"]["pattern"] == r"^3\.[0-9]+\.[0-9]+$"
    assert props["storage"]["default"] == {}
    assert props["storage"]["properties"]["size"]["default"] == "1Gi"
    assert props["pvcRetentionPolicy"]["properties"]["whenDeleted"]["default"] == "Retain"
    assert props["paused"]["default"] is False
    assert "default" not in props["image"]
    for name in ("replicas", "version", "storage", "etcd", "paused"):
        assert props[name]["description"], name


def test_cel_rules_are_attached_where_they_belong() -> None:
    props = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]["properties"]
    size_rules = [
        r["rule"] for r in props["storage"]["properties"]["size"]["x-kubernetes-validations"]
    ]
    assert "quantity(self).compareTo(quantity(oldSelf)) >= 0" in size_rules
    storage_rules = [r["message"] for r in props["storage"]["x-kubernetes-validations"]]
    assert "storage.storageClassName is immutable" in storage_rules
    etcd_rules = [r["rule"] for r in props["etcd"]["x-kubernetes-validations"]]
    assert any("self.electionTimeoutMs >= 5 * self.heartbeatIntervalMs" in r for r in etcd_rules)
    version_rules = [r["rule"] for r in props["version"]["x-kubernetes-validations"]]
    assert all(r.startswith("self == oldSelf || ") for r in version_rules)
    assert any("<= int(oldSelf.split('.')[1]) + 1" in r for r in version_rules)  # no skip
    assert any(">= int(oldSelf.split('.')[1]) - 1" in r for r in version_rules)  # 1 down max
    root_rules = [r["rule"] for r in openapi_schema(ETCD_CLUSTER)["x-kubernetes-validations"]]
    assert any("self.metadata.name" in rule for rule in root_rules)


def test_free_form_fields_preserve_unknown_fields_and_nothing_else_does() -> None:
    schema = openapi_schema(ETCD_CLUSTER)
    template = schema["properties"]["spec"]["properties"]["podTemplate"]["properties"]
    assert template["affinity"]["x-kubernetes-preserve-unknown-fields"] is True
    assert template["tolerations"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    policy = schema["properties"]["spec"]["properties"]["networkPolicy"]["properties"]
    for peers in ("clientsFrom", "metricsFrom"):
        assert policy[peers]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    preserving = [n for n in _walk(schema) if n.get("x-kubernetes-preserve-unknown-fields")]
    # affinity, tolerations[], topologySpreadConstraints[], clientsFrom[], metricsFrom[]
    assert len(preserving) == 5


def test_status_lists_are_maps_keyed_like_kubernetes_lists() -> None:
    status = openapi_schema(ETCD_CLUSTER)["properties"]["status"]["properties"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["members"]["x-kubernetes-list-map-keys"] == ["name"]
    assert status["members"]["items"]["properties"]["peerURL"]["type"] == "string"
    assert status["phase"]["enum"][0] == "Pending"


def test_server_defaulting_of_an_empty_spec_equals_the_model_defaults() -> None:
    spec_schema = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]
    defaulted = apply_defaults(spec_schema, {})
    assert value_errors(spec_schema, defaulted) == []
    assert parse_spec(defaulted) == EtcdClusterSpec()
    # Every default the model has is visible in the stored object.
    assert defaulted["etcd"]["electionTimeoutMs"] == 1000
    assert defaulted["storage"] == {"size": "1Gi", "emptyDir": False}


_partial_specs = st.fixed_dictionaries(
    {},
    optional={
        "replicas": st.integers(1, 9),
        "version": st.sampled_from(["3.5.35", "3.6.16", "3.6.16"]),
        "storage": st.fixed_dictionaries(
            {},
            optional={"size": st.sampled_from(["1Gi", "10Gi", "512Mi"]), "emptyDir": st.booleans()},
        ),
        "etcd": st.fixed_dictionaries(
            {},
            optional={
                "heartbeatIntervalMs": st.integers(10, 200),
                "snapshotCount": st.integers(1, 10**6),
            },
        ),
        "pvcRetentionPolicy": st.fixed_dictionaries(
            {}, optional={"whenScaled": st.sampled_from(["Retain", "Delete"])}
        ),
        "paused": st.booleans(),
    },
)


# No deadline: each example builds the whole schema (~0.1 s, more on a loaded machine).
@settings(max_examples=200, deadline=None)
@given(_partial_specs)
def test_server_defaults_and_model_defaults_agree_on_any_partial_spec(spec: dict[str, Any]) -> None:
    spec_schema = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]
    assert parse_spec(apply_defaults(spec_schema, spec)) == parse_spec(spec)


def test_crd_parses_as_a_lightkube_custom_resource_definition() -> None:
    definition = CustomResourceDefinition.from_dict(crd(ETCD_CLUSTER))
    assert definition.spec.names.shortNames == ["etcdc", "ec"]


def test_the_example_is_valid_and_has_three_members() -> None:
    example = yaml.safe_load((REPO / "examples" / "etcdcluster.yaml").read_text())
    schema = openapi_schema(ETCD_CLUSTER)
    assert example["apiVersion"] == "etcd.operator.io/v1alpha1"
    assert value_errors(schema["properties"]["spec"], example["spec"]) == []
    assert parse_spec(example["spec"]).replicas == 3


def test_unions_the_server_cannot_express_are_refused() -> None:
    class Union(BaseModel):
        value: int | list[int]

    with pytest.raises(SchemaConversionError, match="not structural"):
        model_schema(Union)
