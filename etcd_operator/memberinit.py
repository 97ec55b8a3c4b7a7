"""Data-directory check that runs as an init container before every etcd member.

A member that has taken part in raft must never start again with an empty data
directory under its old identity (it would vote without the log it acknowledged),
and must never start on a volume that belongs to another cluster. Only the node
can see the volume, so this check runs there and reports with a distinct exit code
that the operator reads from the pod status; the planner then replaces the member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

MARKER_NAME = ".etcd-operator-member.json"


class Verdict(IntEnum):
    """Exit codes of `etcd-operator member-init`; the operator matches on them."""

    OK = 0
    FOREIGN_DATA = 42
    DATA_LOST = 43


@dataclass(frozen=True)
class Identity:
    cluster_uid: str
    member_name: str


def check_data_dir(data_dir: Path, identity: Identity, expect_data: bool) -> tuple[Verdict, str]:
    """Decide whether etcd may start on `data_dir`; writes the ownership marker when it may."""
    marker = data_dir.parent / MARKER_NAME
    has_data = (data_dir / "member").is_dir()
    recorded = _read_marker(marker)
    if has_data and recorded is not None and recorded != identity:
        return Verdict.FOREIGN_DATA, (
            f"data directory belongs to cluster {recorded.cluster_uid} member "
            f"{recorded.member_name}, not {identity.cluster_uid} {identity.member_name}"
        )
    if expect_data and not has_data:
        return (
            Verdict.DATA_LOST,
            f"member {identity.member_name} has started before but {data_dir} is empty",
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        json.dumps({"clusterUID": identity.cluster_uid, "member": identity.member_name})
    )
    return Verdict.OK, "data directory is usable"


def _read_marker(marker: Path) -> Identity | None:
    try:
        raw = json.loads(marker.read_text())
        return Identity(cluster_uid=str(raw["clusterUID"]), member_name=str(raw["member"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
