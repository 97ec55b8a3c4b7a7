"""Data-directory check that runs as an init container before every etcd member.

A member that has taken part in raft must never start again with an empty data
directory under its old identity (it would vote without the log it acknowledged),
and must never start on a volume that belongs to another cluster or member. Only the
node can see the volume, so this check runs there and reports with a distinct exit code
that the operator reads from the pod status; the planner then replaces the member.

What the volume holds is read from etcd's own WAL (its metadata names the member ID), and
what it should hold comes from the operator's durable record of the member (`member_id`),
never from whether the cluster answers right now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from etcd_operator.datadir import WalError, read_identity

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


def check_data_dir(
    data_dir: Path, identity: Identity, expect_data: bool, member_id: int | None = None
) -> tuple[Verdict, str]:
    """Decide whether etcd may start on `data_dir`; writes the ownership marker when it may.

    `member_id` (the operator's record that this volume holds that member's raft log) implies
    `expect_data`; `expect_data` alone only asks for some WAL to be present."""
    marker = data_dir.parent / MARKER_NAME
    expect_data = expect_data or member_id is not None
    try:
        wal = read_identity(data_dir)
    except WalError as e:
        verdict = Verdict.DATA_LOST if expect_data else Verdict.FOREIGN_DATA
        return verdict, f"the write-ahead log in {data_dir} is unreadable: {e}"
    has_data = wal is not None or (data_dir / "member").is_dir()
    recorded = _read_marker(marker)
    if has_data and recorded is not None and recorded != identity:
        return Verdict.FOREIGN_DATA, (
            f"data directory belongs to cluster {recorded.cluster_uid} member "
            f"{recorded.member_name}, not {identity.cluster_uid} {identity.member_name}"
        )
    if expect_data and wal is None:
        return (
            Verdict.DATA_LOST,
            f"member {identity.member_name} has started before but {data_dir} holds no"
            " write-ahead log",
        )
    if member_id is not None and wal is not None and wal.member_id != member_id:
        return Verdict.FOREIGN_DATA, (
            f"the write-ahead log in {data_dir} is member {wal.member_id:x}'s, not"
            f" {identity.member_name}'s ({member_id:x})"
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
