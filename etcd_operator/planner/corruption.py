"""Corruption: members whose keyspace diverged from the healthy majority's are replaced.

The evidence is etcd's own HashKV, taken on every voter at one common revision (the shell
asks each member for the same revision; hashes at different compact revisions are not
comparable and are ignored). A member is diverged only when a strict majority of the voters
agree on another hash: the majority's data is the cluster's committed truth, so the member is
replaced from it (removed, added back as a learner on a fresh volume: planner/replace.py),
never the other way round. Without such a majority nothing is replaced: the condition says
which members disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from etcd_operator.planner.model import KvHash
from etcd_operator.planner.replace import remove_for_replacement
from etcd_operator.planner.steps import Decision, Reason, degraded
from etcd_operator.planner.view import View, quorum


def comparable(hashes: Mapping[int, KvHash]) -> bool:
    """Hashes say something only when taken at one revision and one compact revision."""
    return len({(h.revision, h.compact_revision) for h in hashes.values()}) == 1


def diverged_members(hashes: Mapping[int, KvHash], voters: int) -> tuple[int, ...] | None:
    """The members (IDs, sorted) whose hash differs from that of a strict majority of
    `voters`; () when all hashes agree (or there are none); None when they disagree without
    a majority, or are not comparable."""
    if not hashes:
        return ()
    if not comparable(hashes):
        return None
    counts = Counter(h.hash for h in hashes.values())
    if len(counts) == 1:
        return ()
    top, agreeing = counts.most_common(1)[0]
    if agreeing < quorum(voters):
        return None
    return tuple(sorted(mid for mid, h in hashes.items() if h.hash != top))


def replace_corrupt(v: View) -> Decision | None:
    """A voter diverged from the majority's HashKV is replaced from the majority."""
    hashes = {m.id: h for m in v.voters if (h := v.observed.kv_hashes.get(m.id)) is not None}
    if not hashes or not comparable(hashes):
        return None  # e.g. a compaction applied by some members only: the next check decides
    verdict = diverged_members(hashes, len(v.voters))
    if verdict == ():
        return None
    if verdict is None:
        listed = ", ".join(
            f"{v.label(m)}={hashes[m.id].hash:x}" for m in v.voters if m.id in hashes
        )
        return degraded(
            Reason.CORRUPTION_SUSPECTED,
            f"members' HashKV disagree without a majority ({listed}); nothing is replaced: find"
            " the member with the right data (e.g. from a backup) and replace the others",
        )
    target = next(m for m in v.voters if m.id == verdict[0])
    name = v.label(target)
    return remove_for_replacement(
        v,
        target,
        Reason.REPLACE_CORRUPT_MEMBER,
        f"{name}'s keyspace diverged from the majority (HashKV {hashes[target.id].hash:x} at"
        f" revision {hashes[target.id].revision}): replacing it by a fresh member that copies"
        " the majority's data",
    )
