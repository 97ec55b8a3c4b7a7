"""Whether a majority of the voters is gone for good (their data lost, not just restarting),
from durable records only: the claims that record a member's log, and member-init's verdict on
a pod (data lost: the volume of a member that had voted is empty or another's).

Minimal version for FromLatestBackup (branch rollback); the FromSurvivor work builds the same
fact and the two are to be unified."""

from __future__ import annotations

from etcd_operator.naming import by_ordinal
from etcd_operator.planner.model import Observed
from etcd_operator.planner.recovery import quorum_lost_for_good
from etcd_operator.planner.view import quorum


def voters_on_record(o: Observed) -> list[str]:
    """Members known to have run: their current claim records their log, or their pod says the
    log it must hold is gone (emptyDir members have no record: never counted)."""
    names = {n for n, p in o.pvcs.items() if p.member_id is not None}
    names |= {n for n, p in o.pods.items() if p.data_lost and n in o.expected_peer_urls}
    return by_ordinal(names)


def permanently_lost(o: Observed) -> list[str]:
    """Voters whose data is lost for good: member-init refused their volume."""
    return [n for n in voters_on_record(o) if (pod := o.pods.get(n)) is not None and pod.data_lost]


def majority_permanently_lost(o: Observed) -> bool:
    """No member answers and too few voters keep their data to ever form a quorum again: by
    the claims' records and member-init's verdicts, or by the FromSurvivor rules' own fact
    (planner/recovery.py, which also reads the survivors' own member lists)."""
    if o.members is not None:
        return False
    voters = voters_on_record(o)
    lost = permanently_lost(o)
    if voters and len(voters) - len(lost) < quorum(len(voters)):
        return True
    return quorum_lost_for_good(o) is not None
