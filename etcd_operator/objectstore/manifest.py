"""The manifest written beside a snapshot once it is complete: what it is and how to check it.

A snapshot without its manifest is not a backup: writers put the manifest only after the
snapshot itself is complete, so readers trust a snapshot only through its manifest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

FORMAT = 1
# Fields added after format 1 shipped: absent in older manifests.
_OPTIONAL = frozenset({"keys"})


@dataclass(frozen=True)
class Manifest:
    sha256: str  # hex, over the whole stored snapshot (etcd's trailer included)
    size: int  # bytes
    revision: int  # the etcd store's revision the snapshot holds
    cluster_id: str  # hex
    etcd_version: str
    member: str  # the member it was taken from
    start_time: str  # RFC 3339, UTC
    completion_time: str
    # Keys at `revision`, counted on the same member right after the snapshot; None when
    # that revision was compacted meanwhile (or the manifest predates the count).
    keys: int | None = None

    def to_json(self) -> bytes:
        fields = asdict(self)
        body = {"format": FORMAT, **{_camel(k): v for k, v in fields.items() if v is not None}}
        return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a manifest; ValueError when it is not one this version understands."""
        try:
            body: dict[str, Any] = json.loads(data)
            if body.get("format") != FORMAT:
                raise ValueError(f"unknown manifest format {body.get('format')!r}")
            manifest = cls(
                **{k: body[_camel(k)] for k in cls.__dataclass_fields__ if k not in _OPTIONAL},
                **{k: body[_camel(k)] for k in _OPTIONAL if _camel(k) in body},
            )
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a snapshot manifest: {e}") from None
        if not isinstance(manifest.size, int) or not isinstance(manifest.revision, int):
            raise ValueError("not a snapshot manifest: size and revision must be integers")
        if manifest.keys is not None and not isinstance(manifest.keys, int):
            raise ValueError("not a snapshot manifest: keys must be an integer")
        return manifest


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    word = head + "".join(part.capitalize() for part in rest)
    return word.replace("clusterId", "clusterID")
