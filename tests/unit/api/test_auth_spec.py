"""`spec.auth`: defaults, validation, and the CEL rule the API server enforces."""

from __future__ import annotations

import pytest

from etcd_operator.api import InvalidSpecError, parse_spec
from etcd_operator.api.crd import ETCD_CLUSTER, openapi_schema


def test_auth_is_off_by_default_with_a_generated_secret() -> None:
    auth = parse_spec({}).auth
    assert auth.enabled is False
    assert auth.root_secret_name is None
    assert parse_spec({}).to_k8s()["auth"] == {"enabled": False}


def test_auth_reads_its_wire_names() -> None:
    auth = parse_spec({"auth": {"enabled": True, "rootSecretName": "etcd-root.v1"}}).auth
    assert auth.enabled is True
    assert auth.root_secret_name == "etcd-root.v1"


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"rootSecretName": "Not_A_Name"}, "spec.auth.rootSecretName: String should match"),
        ({"rootSecretName": ""}, "spec.auth.rootSecretName: String should have at least 1"),
        ({"password": "x"}, "spec.auth.password: unknown field"),
        ({"enabled": "sometimes"}, "spec.auth.enabled: Input should be a valid boolean"),
    ],
)
def test_invalid_auth_specs_name_the_field(auth: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec({"auth": auth})
    assert message in str(caught.value)


def test_the_schema_defaults_auth_and_guards_the_secret_name_while_enabled() -> None:
    props = openapi_schema(ETCD_CLUSTER)["properties"]["spec"]["properties"]
    auth = props["auth"]
    assert auth["default"] == {}
    assert auth["properties"]["enabled"]["default"] is False
    assert "default" not in auth["properties"]["rootSecretName"]
    messages = [r["message"] for r in auth["x-kubernetes-validations"]]
    assert any("rootSecretName cannot change while auth stays enabled" in m for m in messages)
