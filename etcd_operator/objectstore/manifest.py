"""The manifest written beside a snapshot once it is complete: what it is and how to check it.

A snapshot without its manifest is not a backup: writers put the manifest only after the
snapshot itself is complete, so readers trust a snapshot only through its manifest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

FORMAT = 1


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

    def to_json(self) -> bytes:
        body = {"format": FORMAT, **{_camel(k): v for k, v in asdict(self).items()}}
        return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a manifest; ValueError when it is not one this version understands."""
        try:
            body: dict[str, Any] = json.loads(data)
            if body.get("format") != FORMAT:
                raise ValueError(f"unknown manifest format {body.get('format')!r}")
            manifest = cls(**{k: body[_camel(k)] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a snapshot manifest: {e}") from None
        if not isinstance(manifest.size, int) or not isinstance(manifest.revision, int):
            raise ValueError("not a snapshot manifest: size and revision must be integers")
        return manifest


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    word = head + "".join(part.capitalize() for part in rest)
    return word.replace("clusterId", "clusterID")
