"""Which namespaces the operator watches: every namespace (the default) or a list of names.

`etcd-operator run --namespace NS` (repeatable) or `ETCD_OPERATOR_NAMESPACES=a,b` selects a
namespaced install. Names must be exact (no kopf glob patterns): a pattern would need the
right to list every Namespace, which is what a namespaced install avoids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NAMESPACES_ENV = "ETCD_OPERATOR_NAMESPACES"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def valid_namespace(name: str) -> bool:
    """Whether `name` can name a Namespace (a DNS-1123 label)."""
    return _NAMESPACE.fullmatch(name) is not None


def parse_namespaces(values: Iterable[str]) -> tuple[str, ...]:
    """Namespace names from flags and/or comma-separated lists, deduplicated in order;
    empty means every namespace. Raises ValueError on a name that is not a namespace's."""
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if not valid_namespace(name):
                raise ValueError(f"{name!r} is not a namespace name")
            if name not in names:
                names.append(name)
    return tuple(names)
