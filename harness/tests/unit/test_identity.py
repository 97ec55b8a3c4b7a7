"""The operator's identity: which account and RBAC an install gets, and its kubeconfig."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding, Role

from etcd_operator.manifests import cluster_role
from harness import identity


def test_a_cluster_wide_operator_gets_deploy_manifests_without_the_deployment() -> None:
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
    assert not any(isinstance(o, Deployment) for o in objects)
    [role] = [o for o in objects if isinstance(o, ClusterRole)]
    assert role.to_dict()["rules"] == cluster_role().to_dict()["rules"]
    account = identity.account_for("operator", ())
    [binding] = [o for o in objects if isinstance(o, ClusterRoleBinding)]
    assert [(s.namespace, s.name) for s in binding.subjects or []] == [
        (account.namespace, account.name)
    ]


def test_a_namespaced_operator_has_its_own_account_and_no_cluster_wide_role_on_its_kinds() -> None:
    account = identity.account_for("demo", ("a", "b"))
    assert account != identity.account_for("operator", ())
    objects = identity.namespaced_objects(account, ("a", "b"))
    roles = [o.metadata.namespace for o in objects if isinstance(o, Role)]
    assert roles == ["a", "b", account.namespace]  # the last: its leader-election Lease
    cluster_roles = [o for o in objects if isinstance(o, ClusterRole)]
    resources = {r for o in cluster_roles for rule in o.rules or [] for r in rule.resources or []}
    assert resources == {"storageclasses"}
    assert not any(isinstance(o, Deployment) for o in objects)


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
