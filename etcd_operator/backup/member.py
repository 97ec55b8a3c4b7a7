"""Which member to take a snapshot from (pure).

A snapshot costs the member that serves it disk reads and bandwidth, so a follower serves
it, the leader only when no follower can. A candidate must have answered its status just
now, know a leader (one cut off from its peers would hand out stale data), not be a
learner, and have no alarm. Followers come most caught-up first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from etcd_operator.etcd import ClusterMembers, MemberStatus


@dataclass(frozen=True)
class Candidate:
    name: str
    endpoint: str
    status: MemberStatus


def candidates(
    members: ClusterMembers, statuses: Mapping[str, MemberStatus | None]
) -> list[Candidate]:
    """Members in the order to try them; `statuses` by client URL (None: no answer)."""
    followers: list[Candidate] = []
    leaders: list[Candidate] = []
    for member in members.members:
        if member.is_learner:
            continue
        for url in member.client_urls:
            status = statuses.get(url)
            if status is None or status.leader == 0 or status.errors or status.is_learner:
                continue
            if status.cluster_id != members.cluster_id:
                continue
            candidate = Candidate(member.name or f"{member.id:x}", url, status)
            (leaders if status.leader == status.member_id else followers).append(candidate)
            break
    followers.sort(key=lambda c: (-c.status.raft_applied_index, c.name))
    return followers + leaders
