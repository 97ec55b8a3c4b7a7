"""RBAC declared beside the code that needs it; the operator's ClusterRole is generated from it.

Every module that calls the Kubernetes API (or makes kopf call it) declares, at module level,
each verb it uses on each resource and why: `needs(Pod, "list", why=...)`. `cluster_rules()`
loads everything `etcd-operator run` loads and merges the declarations into the ClusterRole's
rules, so the role grants exactly what the code uses and cannot drift from it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

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


_DECLARED: list[Rule] = []


def resource_of(kind: Any, subresource: str | None = None) -> tuple[str, str]:
    """(API group, resource) of a lightkube resource type, e.g. `("", "pods")`."""
    info = kind._api_info
    sub = subresource or info.action
    # A subresource lives in its parent's group (pods/eviction is core, though an Eviction
    # is a policy/v1 object).
    group = (info.parent or info.resource).group
    return group, info.plural + (f"/{sub}" if sub else "")


def needs(kind: Any, *verbs: str, why: str, subresource: str | None = None) -> None:
    """Declare that the calling module uses `verbs` on `kind` (a lightkube resource type)."""
    group, resource = resource_of(kind, subresource)
    for verb in verbs:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; one of {VERBS}")
        _DECLARED.append(Rule(group, resource, verb, why))


def declared() -> list[Rule]:
    """Every rule the operator's modules declare (loading them first)."""
    for module in _OPERATOR_MODULES:
        importlib.import_module(module)
    return list(_DECLARED)


def cluster_rules() -> list[PolicyRule]:
    """One rule per API group and resource, verbs merged; groups and resources sorted."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in declared():
        verbs.setdefault((rule.group, rule.resource), set()).add(rule.verb)
    return [
        PolicyRule(
            apiGroups=[group],
            resources=[resource],
            verbs=[v for v in VERBS if v in granted],
        )
        for (group, resource), granted in sorted(verbs.items())
    ]
