"""Typed, immutable results of etcd calls (plain values, no protobuf objects leak out)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


def format_member_id(member_id: int) -> str:
    """Member IDs as etcd prints them (etcdctl, logs, flags): lowercase hex without padding."""
    return f"{member_id:x}"


@dataclass(frozen=True)
class Member:
    """One entry of the member list.

    A member that was added but whose process has not joined yet has an empty ``name``
    and no ``client_urls`` (``started`` is False).
    """

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @property
    def started(self) -> bool:
        return bool(self.name)

    @property
    def id_hex(self) -> str:
        return format_member_id(self.id)


@dataclass(frozen=True)
class AuthStatus:
    """etcd's authentication switch and the revision of its users and roles."""

    enabled: bool
    revision: int


@dataclass(frozen=True)
class ClusterMembers:
    """The member list as seen by one member (``responder_id``) of cluster ``cluster_id``."""

    cluster_id: int
    responder_id: int
    members: tuple[Member, ...]

    def by_id(self, member_id: int) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def by_name(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    @property
    def voters(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if not m.is_learner)

    @property
    def learners(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.is_learner)


@dataclass(frozen=True)
class MemberAdded:
    """Result of MemberAdd: the new member (not started yet) and the member list including it.

    The list is what the new member's ``--initial-cluster`` must be built from.
    """

    member: Member
    members: ClusterMembers


@dataclass(frozen=True)
class MemberStatus:
    """Maintenance.Status of one member, as answered by that member itself.

    Raft indexes are exposed raw so that the planner decides "caught up": a learner is
    promotable once its ``raft_applied_index`` is close to the leader's ``raft_index``
    (etcd itself requires the learner's match index to reach 90% of the leader's commit).
    """

    endpoint: str
    member_id: int
    cluster_id: int
    version: str
    db_size: int
    db_size_in_use: int
    leader: int  # 0 when this member knows no leader
    raft_index: int
    raft_term: int
    raft_applied_index: int
    errors: tuple[str, ...]  # e.g. active alarms ("memberID:... alarm:NOSPACE")
    is_learner: bool
    revision: int
    # etcd >= 3.6 only ("" / False from older members): the version of the member's data
    # (it follows the cluster version, e.g. down to the target once a downgrade is enabled),
    # and the cluster's downgrade as this member knows it.
    storage_version: str = ""
    downgrade_enabled: bool = False
    downgrade_target: str = ""  # e.g. "3.5.0" while a downgrade is enabled

    @property
    def is_leader(self) -> bool:
        return self.leader != 0 and self.leader == self.member_id

    @property
    def has_leader(self) -> bool:
        return self.leader != 0


@dataclass(frozen=True)
class HashKV:
    """HashKV of one member's MVCC keyspace up to ``revision`` (0 = the member's latest).

    Members agree on ``hash`` for the same revision and compact revision; compare hashes
    taken at one explicit revision, because each member's latest revision may differ.
    """

    endpoint: str
    member_id: int
    hash: int
    compact_revision: int
    revision: int  # the revision the member hashed up to (its header revision when 0 was asked)


class AlarmType(enum.Enum):
    NONE = 0
    NOSPACE = 1
    CORRUPT = 2


@dataclass(frozen=True)
class Alarm:
    member_id: int
    alarm: AlarmType


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


@dataclass(frozen=True)
class EndpointHealth:
    """Whether one member serves requests that need a quorum.

    ``healthy`` means: the member answered Status, knows a leader, and (for voters) a
    linearizable read through it succeeded, which needs a ReadIndex round confirmed by a
    quorum. Learners cannot serve linearizable reads, so for them a serializable read is
    used instead. ``status`` is set whenever the Status call itself succeeded.
    """

    endpoint: str
    healthy: bool
    took: float
    error: str | None
    status: MemberStatus | None
