"""RBAC declared beside the code that needs it; the operator's roles are generated from it.

Every module that calls the Kubernetes API (or makes kopf call it) declares, at module level,
each verb it uses on each resource and why: `needs(Pod, "list", why=...)`. `cluster_rules()`
loads everything `etcd-operator run` loads and merges the declarations into the ClusterRole's
rules, so the role grants exactly what the code uses and cannot drift from it.

A namespaced install (`run --namespace`) splits the same declarations by the resource's
scope: `namespaced_rules()` for a Role in each watched namespace, `cluster_scoped_rules()`
for what must stay cluster-wide. Rules declared `cluster_wide_only` (kopf following CRDs,
which it does not do in namespaced mode) are left out of both.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lightkube.core.resource import NamespacedResource, NamespacedSubResource
from lightkube.models.rbac_v1 import PolicyRule

# What `etcd-operator run` loads (kopf's --module): importing it declares every rule.
_OPERATOR_MODULES = ("etcd_operator.handlers",)
# Verbs in the order Kubernetes documents them, so that generated rules read the same way.
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


@dataclass(frozen=True, slots=True)
class Rule:
    group: str  # "" is the core API group
    resource: str  # plural, or plural/subresource
    verb: str
    why: str
    namespaced: bool = True  # the resource lives in a namespace (a Role can grant it)
    cluster_wide_only: bool = False  # used only when the operator watches every namespace
    # Only in the operator's own namespace (its leader-election Lease): a Role there.
    operator_namespace: bool = False


_DECLARED: list[Rule] = []


def resource_of(kind: Any, subresource: str | None = None) -> tuple[str, str]:
    """(API group, resource) of a lightkube resource type, e.g. `("", "pods")`."""
    info = kind._api_info
    sub = subresource or info.action
    # A subresource lives in its parent's group (pods/eviction is core, though an Eviction
    # is a policy/v1 object).
    group = (info.parent or info.resource).group
    return group, info.plural + (f"/{sub}" if sub else "")


def is_namespaced(kind: Any) -> bool:
    """Whether objects of a lightkube resource type (or subresource) live in a namespace."""
    return isinstance(kind, type) and issubclass(kind, NamespacedResource | NamespacedSubResource)


def needs(
    kind: Any,
    *verbs: str,
    why: str,
    subresource: str | None = None,
    cluster_wide_only: bool = False,
    operator_namespace: bool = False,
) -> None:
    """Declare that the calling module uses `verbs` on `kind` (a lightkube resource type).
    `cluster_wide_only`: only an operator watching every namespace makes these calls.
    `operator_namespace`: only on objects in the operator's own namespace."""
    group, resource = resource_of(kind, subresource)
    for verb in verbs:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; one of {VERBS}")
        _DECLARED.append(
            Rule(
                group,
                resource,
                verb,
                why,
                is_namespaced(kind),
                cluster_wide_only,
                operator_namespace,
            )
        )


def declared() -> list[Rule]:
    """Every rule the operator's modules declare (loading them first)."""
    for module in _OPERATOR_MODULES:
        importlib.import_module(module)
    return list(_DECLARED)


def cluster_rules() -> list[PolicyRule]:
    """The ClusterRole of a cluster-wide install: every declared rule."""
    return _merged(r for r in declared() if not r.operator_namespace)


def operator_namespace_rules() -> list[PolicyRule]:
    """The Role in the operator's own namespace (either install)."""
    return _merged(r for r in declared() if r.operator_namespace)


def namespaced_rules() -> list[PolicyRule]:
    """The Role in each namespace a namespaced install watches."""
    return _merged(
        r
        for r in declared()
        if r.namespaced and not r.cluster_wide_only and not r.operator_namespace
    )


def cluster_scoped_rules() -> list[PolicyRule]:
    """What a namespaced install still needs cluster-wide: rules on cluster-scoped resources."""
    return _merged(r for r in declared() if not r.namespaced and not r.cluster_wide_only)


def _merged(rules: Iterable[Rule]) -> list[PolicyRule]:
    """One rule per API group and resource, verbs merged; groups and resources sorted."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        verbs.setdefault((rule.group, rule.resource), set()).add(rule.verb)
    return [
        PolicyRule(
            apiGroups=[group],
            resources=[resource],
            verbs=[v for v in VERBS if v in granted],
        )
        for (group, resource), granted in sorted(verbs.items())
    ]
