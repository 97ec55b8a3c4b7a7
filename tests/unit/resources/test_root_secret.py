"""The generated root Secret: owned by the cluster, a fresh random password each time."""

from __future__ import annotations

import base64

from etcd_operator.resources.root_secret import (
    PASSWORD_KEY,
    new_root_password,
    root_secret,
    root_secret_name,
)
from unit.support.clusters import make_cluster


def test_the_generated_secret_is_owned_by_its_cluster_and_holds_the_password() -> None:
    cluster = make_cluster(auth={"enabled": True})
    secret = root_secret(cluster, "pw")
    assert secret.metadata is not None and secret.metadata.name == "demo-root"
    assert secret.metadata.namespace == "ns"
    owners = secret.metadata.ownerReferences or []
    assert [(o.kind, o.name, o.uid, o.controller) for o in owners] == [
        ("EtcdCluster", "demo", "uid-1", True)
    ]
    assert base64.b64decode((secret.data or {})[PASSWORD_KEY]) == b"pw"


def test_the_secret_name_is_the_users_or_the_generated_one() -> None:
    assert root_secret_name(make_cluster()) == "demo-root"
    named = make_cluster(auth={"enabled": True, "rootSecretName": "mine"})
    assert root_secret_name(named) == "mine"


def test_generated_passwords_are_32_random_bytes() -> None:
    passwords = {new_root_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(base64.urlsafe_b64decode(p + "=")) == 32 for p in passwords)
