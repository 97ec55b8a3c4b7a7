"""Whether an object the operator server-side applies needs applying again: pure.

A server-side apply that changes nothing still costs the API server a write request, so the
shell applies a Service or the PodDisruptionBudget only when `needs_apply` says the live
object is missing or differs. Two checks, each catching what the other cannot:

* every field the built object sets has the same value in the live object (lists
  element by element, same length), so an object edited by hand is put back; fields the
  server or others add (clusterIP, status, other labels) are left alone, as server-side
  apply leaves them;
* the live object carries the hash of the built object (`APPLIED_HASH_ANNOTATION`, stamped
  by `stamped`), so a field a newer operator stops setting is removed by the next apply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from lightkube.core.resource import Resource

from etcd_operator.resources.labels import APPLIED_HASH_ANNOTATION

R = TypeVar("R", bound=Resource)


def stamped(obj: R) -> R:
    """`obj` with the hash of its content in its annotations."""
    body = obj.to_dict()  # type: ignore[attr-defined]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    metadata = body.setdefault("metadata", {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        APPLIED_HASH_ANNOTATION: digest,
    }
    result: R = type(obj).from_dict(body)  # type: ignore[attr-defined]
    return result


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether applying `desired` (a stamped object, as a dict) would change `live`, an
    object of the same kind (items of a list may come without `apiVersion` and `kind`)."""
    if live is None:
        return True
    content = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    return not _covers(live, content)


def _covers(live: Any, desired: Any) -> bool:
    """Every value `desired` sets is in `live`."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and _covers(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_covers(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)
