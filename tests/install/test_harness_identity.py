"""The namespaced operators of the e2e suite and the demo run under what the chart grants a
namespaced release (harness.identity renders it with helm, hence this test lives here)."""

from __future__ import annotations

from lightkube.resources.core_v1 import ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole, Role, RoleBinding

from etcd_operator import rbac
from harness import identity


def test_a_namespaced_operator_has_its_own_account_and_no_cluster_wide_role_on_its_kinds() -> None:
    account = identity.account_for("demo", ("a", "b"))
    assert account != identity.account_for("operator", ())
    objects = identity.namespaced_objects(account, ("a", "b"))
    kinds = {type(o).__name__ for o in objects}
    assert kinds <= set(identity.IDENTITY_KINDS)  # nothing that runs
    [sa] = [o for o in objects if isinstance(o, ServiceAccount)]
    assert sa.metadata is not None
    assert (sa.metadata.namespace, sa.metadata.name) == (account.namespace, account.name)
    roles = {o.metadata.namespace: o for o in objects if isinstance(o, Role) and o.metadata}
    assert sorted(roles) == sorted(["a", "b", account.namespace])  # + its leader-election Lease
    assert [r.to_dict() for r in roles["a"].rules or []] == [
        r.to_dict() for r in rbac.namespaced_rules()
    ]
    cluster_roles = [o for o in objects if isinstance(o, ClusterRole)]
    resources = {r for o in cluster_roles for rule in o.rules or [] for r in rule.resources or []}
    assert resources == {"storageclasses"}
    subjects = {
        (s.namespace, s.name)
        for o in objects
        if isinstance(o, RoleBinding)
        for s in o.subjects or []
    }
    assert subjects == {(account.namespace, account.name)}
