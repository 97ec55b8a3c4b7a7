"""The operator's identity: which account and RBAC an install gets, and its kubeconfig."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding, Role

from etcd_operator import rbac
from harness import identity


def test_a_cluster_wide_operator_gets_the_plain_manifest_s_rbac_and_nothing_that_runs() -> None:
    objects = identity.cluster_wide_objects()
    kinds = [type(o).__name__ for o in objects]
    # The Role and binding: the leader-election Lease in the operator's namespace.
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    [role] = [o for o in objects if isinstance(o, ClusterRole)]
    assert role.to_dict()["rules"] == [r.to_dict() for r in rbac.cluster_rules()]
    [lease_role] = [o for o in objects if isinstance(o, Role)]
    assert lease_role.to_dict()["rules"] == [r.to_dict() for r in rbac.operator_namespace_rules()]
    account = identity.account_for("operator", ())
    [binding] = [o for o in objects if isinstance(o, ClusterRoleBinding)]
    assert [(s.namespace, s.name) for s in binding.subjects or []] == [
        (account.namespace, account.name)
    ]


def test_the_kubeconfig_carries_the_token_and_the_admin_one_s_server_and_ca(
    tmp_path: Path,
) -> None:
    admin = tmp_path / "admin.kubeconfig"
    cluster = {
        "name": "lc",
        "cluster": {"server": "https://x:1", "certificate-authority-data": "Q0E="},
    }
    admin.write_text(yaml.safe_dump({"clusters": [cluster], "users": [{"name": "admin"}]}))
    account = identity.Account("ops", "op")
    path = identity.write_kubeconfig(tmp_path / "o" / "op.kubeconfig", admin, account, "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"] == [cluster]
    assert doc["users"] == [{"name": "system:serviceaccount:ops:op", "user": {"token": "tok"}}]
