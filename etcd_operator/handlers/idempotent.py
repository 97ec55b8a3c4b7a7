"""Kubernetes calls that a round may repeat: an object already created, already deleted or
not there is an answer, not an error (a round may run twice, or after a crash mid-round).

Each caller declares its own `rbac.needs` for the kinds it passes here.
"""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.types import CascadeType

NOT_FOUND = 404
CONFLICT = 409


async def get_or_none(kube: AsyncClient, kind: Any, name: str, namespace: str) -> Any:
    """The object, or None when it does not exist."""
    try:
        return await kube.get(kind, name, namespace=namespace)
    except ApiError as e:
        if e.status.code == NOT_FOUND:
            return None
        raise


async def create_once(kube: AsyncClient, obj: Any) -> bool:
    """Create `obj`; False when it exists already (made by an earlier round)."""
    try:
        await kube.create(obj)
    except ApiError as e:
        if e.status.code == CONFLICT:
            return False
        raise
    return True


async def delete_once(kube: AsyncClient, kind: Any, name: str, namespace: str) -> bool:
    """Delete the object and, in the background, what it owns (a Job's pods would otherwise
    be orphaned: Jobs default to that); False when it was gone already."""
    try:
        await kube.delete(kind, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
    except ApiError as e:
        if e.status.code == NOT_FOUND:
            return False
        raise
    return True
